-- The files of removed posts leave the public media area (issue: a removed post's media stayed
-- downloadable, immutable for a year).
--
-- A media's files are public (in `media/`, which the web server or the bucket's policy serves)
-- while a post that is not removed shows them, and in quarantine (`quarantine/`, served by
-- nobody) otherwise; a banned media's files are deleted. `quarantined_at` says since when they
-- are out of the public area (null: public), for the operator's list of URLs a CDN must purge.
ALTER TABLE media
ADD COLUMN quarantined_at timestamptz;

-- The media whose files may have to move: a post showing them was removed, restored, deleted
-- or added to quarantined ones, they completed with no post to show them, or they were banned.
-- A row is written in the transaction of the change and taken away by the process that moves
-- the files (memedroid/services/quarantine.py), right after that transaction, or by the
-- janitor's next round after a crash: a change never goes unmoved.
CREATE TABLE unsettled_media (
    media_id bigint PRIMARY KEY REFERENCES media (id) ON DELETE CASCADE,
    changes integer NOT NULL DEFAULT 1
);

-- Note a change (a second one while the files move waits for the move to end, and is noted
-- anew: the mover's view of the posts may predate it).
CREATE FUNCTION unsettle_media(media bigint) RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO unsettled_media AS u (media_id) VALUES (media)
    ON CONFLICT (media_id) DO UPDATE SET changes = u.changes + 1
$$;

-- A post that stops or starts being shown; a new one shown with quarantined files (the same
-- bytes uploaded again: the upload holds the media row, so it sees a quarantine just made).
CREATE FUNCTION unsettle_post_media() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM unsettle_media(OLD.media_id);
    ELSIF TG_OP = 'UPDATE' OR EXISTS (SELECT 1 FROM media WHERE id = NEW.media_id AND quarantined_at IS NOT NULL) THEN
        PERFORM unsettle_media(NEW.media_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER posts_shown_changed AFTER UPDATE OF removed_at ON posts
FOR EACH ROW WHEN ((old.removed_at IS NULL) <> (new.removed_at IS NULL))
EXECUTE FUNCTION unsettle_post_media();

CREATE TRIGGER posts_shown_deleted AFTER DELETE ON posts
FOR EACH ROW WHEN (old.removed_at IS NULL)
EXECUTE FUNCTION unsettle_post_media();

CREATE TRIGGER posts_shown_added AFTER INSERT ON posts
FOR EACH ROW WHEN (new.removed_at IS NULL)
EXECUTE FUNCTION unsettle_post_media();

-- Media completed while no post shows it (every post of it was removed while it was processed).
CREATE FUNCTION unsettle_unshown_media() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM posts WHERE media_id = NEW.id AND removed_at IS NULL) THEN
        PERFORM unsettle_media(NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER media_completed_unshown AFTER UPDATE OF status ON media
FOR EACH ROW WHEN (new.status = 'completed' AND old.status <> 'completed')
EXECUTE FUNCTION unsettle_unshown_media();

-- What was removed before this migration moves out at the janitor's first round.
INSERT INTO unsettled_media (media_id)
SELECT m.id
FROM media AS m
WHERE
    m.status = 'completed'
    AND NOT EXISTS (
        SELECT 1 FROM posts AS p
        WHERE p.media_id = m.id AND p.removed_at IS NULL
    );

-- The operator's list of URLs to purge reads the media quarantined since a time.
CREATE INDEX media_quarantined_idx ON media (quarantined_at) WHERE quarantined_at IS NOT NULL;

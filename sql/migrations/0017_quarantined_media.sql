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

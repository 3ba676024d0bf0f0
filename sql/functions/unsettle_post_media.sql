-- A post that stops or starts being shown; a new one shown with quarantined files (the same
-- bytes uploaded again: the upload holds the media row, so it sees a quarantine just made).
CREATE OR REPLACE FUNCTION unsettle_post_media() RETURNS trigger
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

CREATE OR REPLACE TRIGGER posts_shown_changed AFTER UPDATE OF removed_at ON posts
FOR EACH ROW WHEN ((old.removed_at IS NULL) <> (new.removed_at IS NULL))
EXECUTE FUNCTION unsettle_post_media();

CREATE OR REPLACE TRIGGER posts_shown_deleted AFTER DELETE ON posts
FOR EACH ROW WHEN (old.removed_at IS NULL)
EXECUTE FUNCTION unsettle_post_media();

CREATE OR REPLACE TRIGGER posts_shown_added AFTER INSERT ON posts
FOR EACH ROW WHEN (new.removed_at IS NULL)
EXECUTE FUNCTION unsettle_post_media();

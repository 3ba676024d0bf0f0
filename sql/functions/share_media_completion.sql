-- A media completed (or, failed and reprocessed, no longer): the posts showing it know.
CREATE OR REPLACE FUNCTION share_media_completion() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF (OLD.status = 'completed') <> (NEW.status = 'completed') THEN
        UPDATE posts SET media_completed = (NEW.status = 'completed') WHERE media_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER media_completion_shared AFTER UPDATE OF status ON media
FOR EACH ROW EXECUTE FUNCTION share_media_completion();

-- Media completed while no post shows it (every post of it was removed while it was processed).
CREATE OR REPLACE FUNCTION unsettle_unshown_media() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM posts WHERE media_id = NEW.id AND removed_at IS NULL) THEN
        PERFORM unsettle_media(NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER media_completed_unshown AFTER UPDATE OF status ON media
FOR EACH ROW WHEN (new.status = 'completed' AND old.status <> 'completed')
EXECUTE FUNCTION unsettle_unshown_media();

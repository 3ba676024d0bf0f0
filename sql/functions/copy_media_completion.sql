-- A new post learns whether its media is completed (the upload holds the media row: the
-- finalizer's change of it waits for the post to commit, and then reaches it).
CREATE OR REPLACE FUNCTION copy_media_completion() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.media_completed := coalesce((SELECT status = 'completed' FROM media WHERE id = NEW.media_id), FALSE);
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER posts_media_completion BEFORE INSERT ON posts
FOR EACH ROW EXECUTE FUNCTION copy_media_completion();

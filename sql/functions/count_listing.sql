-- A post's listing changed (its media completed, removed, restored) or it goes: its tags count it.
CREATE OR REPLACE FUNCTION count_listing() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    was boolean := OLD.media_completed AND OLD.removed_at IS NULL;
    now_listed boolean := coalesce(TG_OP = 'UPDATE' AND NEW.media_completed AND NEW.removed_at IS NULL, FALSE);
BEGIN
    IF was <> now_listed THEN
        PERFORM count_listed_tags(OLD.id, CASE WHEN now_listed THEN 1 ELSE -1 END);
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NULL END;
END
$$;

CREATE OR REPLACE TRIGGER posts_listing_counted AFTER UPDATE OF media_completed, removed_at ON posts
FOR EACH ROW EXECUTE FUNCTION count_listing();

CREATE OR REPLACE TRIGGER posts_deletion_counted BEFORE DELETE ON posts  -- before its taggings go with it
FOR EACH ROW EXECUTE FUNCTION count_listing();

-- A tagging copies the post's ranks.
CREATE OR REPLACE FUNCTION rank_new_tags() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO post_tag_ranks (post_id, slot, tag_id, hot)
    SELECT r.post_id, r.slot, a.tag_id, r.hot
    FROM added AS a
    INNER JOIN post_ranks AS r ON a.post_id = r.post_id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER post_tags_ranked AFTER INSERT ON post_tags
REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION rank_new_tags();

-- A new rank reaches the post's tags in the same statement.
CREATE OR REPLACE FUNCTION copy_ranks_to_tags() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE post_tag_ranks AS t
    SET hot = c.hot
    FROM changed AS c
    WHERE t.post_id = c.post_id AND t.slot = c.slot AND t.hot <> c.hot;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER post_ranks_copied AFTER UPDATE ON post_ranks
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION copy_ranks_to_tags();

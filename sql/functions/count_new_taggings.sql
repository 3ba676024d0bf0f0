-- The taggings of a post that is listed already (the same bytes uploaded again).
CREATE OR REPLACE FUNCTION count_new_taggings() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE tags AS t
    SET listed_posts = t.listed_posts + c.n
    FROM (
        SELECT a.tag_id, count(*) AS n
        FROM added AS a
        INNER JOIN posts AS p ON a.post_id = p.id
        WHERE p.media_completed AND p.removed_at IS NULL
        GROUP BY a.tag_id
    ) AS c
    WHERE t.id = c.tag_id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER post_tags_counted AFTER INSERT ON post_tags
REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION count_new_taggings();

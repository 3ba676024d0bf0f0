-- Add `change` to the count of every tag of a post (its tags locked in id order).
CREATE OR REPLACE FUNCTION count_listed_tags(post bigint, change integer) RETURNS void
LANGUAGE sql
AS $$
    UPDATE tags AS t
    SET listed_posts = t.listed_posts + change
    FROM (
        SELECT id FROM tags
        WHERE id IN (SELECT tag_id FROM post_tags WHERE post_id = post)
        ORDER BY id
        FOR UPDATE
    ) AS locked
    WHERE t.id = locked.id
$$;

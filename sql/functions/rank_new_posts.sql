-- A new post gets its rows in both slots: ranked at once when its media already completed
-- (the same bytes uploaded again), else 0 until the finalizer ranks it.
CREATE OR REPLACE FUNCTION rank_new_posts() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO post_ranks (post_id, slot, author_id, hot)
    SELECT
        a.id,
        s.slot,
        a.author_id,
        CASE WHEN m.status = 'completed' THEN hot_rank(a.like_count, a.created_at, now()) ELSE 0 END
    FROM added AS a
    INNER JOIN media AS m ON a.media_id = m.id
    CROSS JOIN (VALUES (0), (1)) AS s (slot);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER posts_ranked AFTER INSERT ON posts
REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION rank_new_posts();

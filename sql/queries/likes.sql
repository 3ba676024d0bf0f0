-- name: insert_like(user_id, post_id)^
-- Likes a post once; returns the post's new like count and when it was counted (counted_at()
-- in 0007_counted_at.sql), or nothing when it was liked already. The count is copied to the
-- post's tags (for their top feeds).
WITH liked AS (
    INSERT INTO likes (user_id, post_id)
    VALUES (:user_id, :post_id)
    ON CONFLICT DO NOTHING
    RETURNING post_id
),

counted AS (
    UPDATE posts
    SET like_count = like_count + 1
    FROM liked
    WHERE posts.id = liked.post_id
    RETURNING posts.id, posts.like_count, counted_at()
),

tagged AS (
    UPDATE post_tags
    SET like_count = counted.like_count
    FROM counted
    WHERE post_tags.post_id = counted.id
)

SELECT counted.like_count AS count, counted.counted_at FROM counted;

-- name: delete_like(user_id, post_id)^
-- Takes a like back; returns the post's new like count and when it was counted, or nothing
-- when there was none.
WITH unliked AS (
    DELETE FROM likes
    WHERE user_id = :user_id AND post_id = :post_id
    RETURNING post_id
),

counted AS (
    UPDATE posts
    SET like_count = like_count - 1
    FROM unliked
    WHERE posts.id = unliked.post_id
    RETURNING posts.id, posts.like_count, counted_at()
),

tagged AS (
    UPDATE post_tags
    SET like_count = counted.like_count
    FROM counted
    WHERE post_tags.post_id = counted.id
)

SELECT counted.like_count AS count, counted.counted_at FROM counted;

-- name: list_liked_post_ids(user_id, post_ids)
-- Which of these posts the user likes.
SELECT post_id
FROM likes
WHERE user_id = :user_id AND post_id = ANY(:post_ids);

-- name: add_view_counts(post_ids, counts)!
-- Adds a batch of view counts flushed from Redis.
UPDATE posts
SET view_count = posts.view_count + batch.views
FROM unnest(CAST(:post_ids AS bigint[]), CAST(:counts AS bigint[])) AS batch (post_id, views)
WHERE posts.id = batch.post_id;

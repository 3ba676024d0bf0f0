-- Hot ranks (see 0005_ranked_feeds.sql): the janitor computes generation n + 1 into the slot
-- of generation n - 1, in batches, from the posts still ranked (hot > 0) in generation n.

-- name: start_rerank(interval_seconds)^
-- When the current generation is at least :interval_seconds old: stops keeping the previous
-- generation (its slot is about to be rewritten) and returns the current one.
UPDATE hot_ranking
SET previous_kept = false
WHERE ranked_at <= now() - make_interval(secs => :interval_seconds)
RETURNING generation, now() AS ranked_at;

-- name: rerank_batch(generation, ranked_at, after_rank, after_id, batch_size)^
-- Ranks the next batch of generation :generation's ranked posts into the other slot as of
-- :ranked_at. Rows another transaction holds are skipped: they keep their rank until the
-- next run. Returns how many rows were ranked and where the batch ended (nulls: no more).
WITH batch AS (
    SELECT c.post_id, c.hot
    FROM post_ranks AS c
    WHERE
        c.slot = mod(:generation, 2)
        AND c.hot > 0
        AND (c.hot, c.post_id) < (:after_rank, :after_id)
    ORDER BY c.hot DESC, c.post_id DESC
    LIMIT :batch_size
),

target AS (
    SELECT n.post_id
    FROM post_ranks AS n
    WHERE n.post_id IN (SELECT b.post_id FROM batch AS b) AND n.slot = 1 - mod(:generation, 2)
    FOR UPDATE SKIP LOCKED
),

ranked AS (
    UPDATE post_ranks AS n
    SET hot = hot_rank(p.like_count, p.created_at, :ranked_at)
    FROM target AS t
    INNER JOIN posts AS p ON t.post_id = p.id
    WHERE n.post_id = t.post_id AND n.slot = 1 - mod(:generation, 2)
    RETURNING n.post_id
),

last AS (
    SELECT b.hot, b.post_id
    FROM batch AS b
    ORDER BY b.hot ASC, b.post_id ASC
    LIMIT 1
)

SELECT
    (SELECT count(*) FROM ranked) AS ranked,
    (SELECT last.hot FROM last) AS last_rank,
    (SELECT last.post_id FROM last) AS last_id;

-- name: zero_fallen(generation)$
-- Posts that left the ranked set in generation :generation leave it in the other slot too;
-- returns how many.
WITH fallen AS (
    UPDATE post_ranks AS n
    SET hot = 0
    FROM post_ranks AS c
    WHERE
        n.slot = 1 - mod(:generation, 2)
        AND n.hot > 0
        AND c.post_id = n.post_id
        AND c.slot = mod(:generation, 2)
        AND c.hot = 0
    RETURNING n.post_id
)

SELECT count(*) AS fallen FROM fallen;

-- name: finish_rerank(generation, ranked_at)!
-- Makes the new generation current; the one before stays kept for walks already under way.
UPDATE hot_ranking
SET generation = :generation + 1, ranked_at = :ranked_at, previous_kept = true
WHERE generation = :generation;

-- name: rank_completed_posts(media_id)!
-- The first rank of the posts of media that just completed, in both slots.
UPDATE post_ranks AS r
SET hot = hot_rank(p.like_count, p.created_at, now())
FROM posts AS p
WHERE p.media_id = :media_id AND r.post_id = p.id;

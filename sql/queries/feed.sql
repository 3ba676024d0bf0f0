-- Feeds: completed posts newest first, one query per page (see the post_details view),
-- keyset pagination on (created_at, id): a page deep in the feed costs what the first does.
-- The first page passes ('infinity', 9223372036854775807) as its cursor. Every listing reads
-- its posts through visible_posts(:show_nsfw, :viewer_id), the one home of what a reader may
-- see (sql/functions/visible_posts.sql).

-- name: list_feed(before_created_at, before_id, page_size, show_nsfw, viewer_id)
-- The global feed.
SELECT
    d.*,
    json_build_array(d.created_at, d.id) AS sort_key
FROM visible_posts(:show_nsfw, :viewer_id) AS d
WHERE
    (d.created_at, d.id) < (:before_created_at, :before_id)
ORDER BY d.created_at DESC, d.id DESC
LIMIT :page_size;

-- name: list_feed_by_author(author, before_created_at, before_id, page_size, show_nsfw, viewer_id)
-- One author's posts.
SELECT
    d.*,
    json_build_array(d.created_at, d.id) AS sort_key
FROM visible_posts(:show_nsfw, :viewer_id) AS d
WHERE
    d.author_id = (
        SELECT users.id FROM users
        WHERE
            lower(users.username) = lower(:author)
    )
    AND (d.created_at, d.id) < (:before_created_at, :before_id)
ORDER BY d.created_at DESC, d.id DESC
LIMIT :page_size;

-- name: list_feed_by_tag(tag, before_created_at, before_id, page_size, show_nsfw, viewer_id)
-- The posts with one tag, walked through the tag's own (created_at, post_id) index.
SELECT
    d.*,
    json_build_array(pt.created_at, pt.post_id) AS sort_key
FROM post_tags AS pt
INNER JOIN visible_posts(:show_nsfw, :viewer_id) AS d ON pt.post_id = d.id
WHERE
    pt.tag_id = (
        SELECT tags.id FROM tags
        WHERE tags.name = :tag
    )
    AND (pt.created_at, pt.post_id) < (:before_created_at, :before_id)
ORDER BY pt.created_at DESC, pt.post_id DESC
LIMIT :page_size;

-- Hot: by stored rank (see 0005_ranked_feeds.sql), one index range over (slot, hot, id). A
-- walk reads the generation its cursor pinned while that generation's slot is kept, so its
-- order does not move under it; `generation` 0 starts a walk in the current one.

-- name: list_hot(generation, before_rank, before_id, page_size, show_nsfw, viewer_id)
-- The global hot feed.
SELECT
    d.*,
    json_build_array((SELECT hot_generation(:generation)), r.hot, r.post_id) AS sort_key
FROM post_ranks AS r
INNER JOIN visible_posts(:show_nsfw, :viewer_id) AS d ON r.post_id = d.id
WHERE
    r.slot = mod(hot_generation(:generation), 2)
    AND (r.hot, r.post_id) < (hot_resume(:generation, :before_rank, :before_id), :before_id)
ORDER BY r.hot DESC, r.post_id DESC
LIMIT :page_size;

-- name: list_hot_by_author(author, generation, before_rank, before_id, page_size, show_nsfw, viewer_id)
-- One author's posts, hottest first.
SELECT
    d.*,
    json_build_array((SELECT hot_generation(:generation)), r.hot, r.post_id) AS sort_key
FROM post_ranks AS r
INNER JOIN visible_posts(:show_nsfw, :viewer_id) AS d ON r.post_id = d.id
WHERE
    r.slot = mod(hot_generation(:generation), 2)
    AND r.author_id = (
        SELECT users.id FROM users
        WHERE
            lower(users.username) = lower(:author)
    )
    AND (r.hot, r.post_id) < (hot_resume(:generation, :before_rank, :before_id), :before_id)
ORDER BY r.hot DESC, r.post_id DESC
LIMIT :page_size;

-- name: list_hot_by_tag(tag, generation, before_rank, before_id, page_size, show_nsfw, viewer_id)
-- The posts with one tag, hottest first, through the tag's own copy of the ranks.
SELECT
    d.*,
    json_build_array((SELECT hot_generation(:generation)), r.hot, r.post_id) AS sort_key
FROM post_tag_ranks AS r
INNER JOIN visible_posts(:show_nsfw, :viewer_id) AS d ON r.post_id = d.id
WHERE
    r.slot = mod(hot_generation(:generation), 2)
    AND r.tag_id = (
        SELECT tags.id FROM tags
        WHERE tags.name = :tag
    )
    AND (r.hot, r.post_id) < (hot_resume(:generation, :before_rank, :before_id), :before_id)
ORDER BY r.hot DESC, r.post_id DESC
LIMIT :page_size;

-- Top: most liked first (ties newest first) among posts since :since, keyset on (like_count, id).

-- name: list_top(since, before_likes, before_id, page_size, show_nsfw, viewer_id)
-- The global top feed.
SELECT
    d.*,
    json_build_array(d.like_count, d.id) AS sort_key
FROM visible_posts(:show_nsfw, :viewer_id) AS d
WHERE
    d.created_at >= :since
    AND (d.like_count, d.id) < (:before_likes, :before_id)
ORDER BY d.like_count DESC, d.id DESC
LIMIT :page_size;

-- name: list_top_by_author(author, since, before_likes, before_id, page_size, show_nsfw, viewer_id)
-- One author's most liked posts.
SELECT
    d.*,
    json_build_array(d.like_count, d.id) AS sort_key
FROM visible_posts(:show_nsfw, :viewer_id) AS d
WHERE
    d.author_id = (
        SELECT users.id FROM users
        WHERE
            lower(users.username) = lower(:author)
    )
    AND d.created_at >= :since
    AND (d.like_count, d.id) < (:before_likes, :before_id)
ORDER BY d.like_count DESC, d.id DESC
LIMIT :page_size;

-- name: list_top_by_tag(tag, since, before_likes, before_id, page_size, show_nsfw, viewer_id)
-- The most liked posts with one tag, through the tag's own copy of the like counts.
SELECT
    d.*,
    json_build_array(pt.like_count, pt.post_id) AS sort_key
FROM post_tags AS pt
INNER JOIN visible_posts(:show_nsfw, :viewer_id) AS d ON pt.post_id = d.id
WHERE
    pt.tag_id = (
        SELECT tags.id FROM tags
        WHERE tags.name = :tag
    )
    AND pt.created_at >= :since
    AND (pt.like_count, pt.post_id) < (:before_likes, :before_id)
ORDER BY pt.like_count DESC, pt.post_id DESC
LIMIT :page_size;

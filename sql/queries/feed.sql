-- Feeds: completed posts newest first, one query per page (see the post_details view),
-- keyset pagination on (created_at, id): a page deep in the feed costs what the first does.
-- The first page passes ('infinity', 9223372036854775807) as its cursor.

-- name: list_feed(before_created_at, before_id, page_size)
-- The global feed.
SELECT
    d.id, d.caption, d.created_at, d.like_count, d.view_count, d.author_id, d.author_username,
    d.media_id, d.status, d.error, d.kind, d.mime, d.width, d.height, d.duration_s, d.path,
    d.thumbnail_path, d.blurhash, d.tags
FROM post_details AS d
WHERE
    d.status = 'completed'
    AND (d.created_at, d.id) < (:before_created_at, :before_id)
ORDER BY d.created_at DESC, d.id DESC
LIMIT :page_size;

-- name: list_feed_by_author(author, before_created_at, before_id, page_size)
-- One author's posts.
SELECT
    d.id, d.caption, d.created_at, d.like_count, d.view_count, d.author_id, d.author_username,
    d.media_id, d.status, d.error, d.kind, d.mime, d.width, d.height, d.duration_s, d.path,
    d.thumbnail_path, d.blurhash, d.tags
FROM post_details AS d
WHERE
    d.author_id = (
        SELECT users.id FROM users
        WHERE lower(users.username) = lower(:author)
    )
    AND d.status = 'completed'
    AND (d.created_at, d.id) < (:before_created_at, :before_id)
ORDER BY d.created_at DESC, d.id DESC
LIMIT :page_size;

-- name: list_feed_by_tag(tag, before_created_at, before_id, page_size)
-- The posts with one tag, walked through the tag's own (created_at, post_id) index.
SELECT
    d.id, d.caption, d.created_at, d.like_count, d.view_count, d.author_id, d.author_username,
    d.media_id, d.status, d.error, d.kind, d.mime, d.width, d.height, d.duration_s, d.path,
    d.thumbnail_path, d.blurhash, d.tags
FROM post_tags AS pt
INNER JOIN post_details AS d ON pt.post_id = d.id
WHERE
    pt.tag_id = (
        SELECT tags.id FROM tags
        WHERE tags.name = :tag
    )
    AND d.status = 'completed'
    AND (pt.created_at, pt.post_id) < (:before_created_at, :before_id)
ORDER BY pt.created_at DESC, pt.post_id DESC
LIMIT :page_size;

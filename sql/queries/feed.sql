-- Feeds: completed posts newest first, one query per page (posts + author + media + tags),
-- keyset pagination on (created_at, id): a page deep in the feed costs what the first does.
-- The first page passes ('infinity', 9223372036854775807) as its cursor.

-- name: list_feed(before_created_at, before_id, page_size)
-- The global feed.
SELECT
    p.id,
    p.caption,
    p.created_at,
    p.like_count,
    p.view_count,
    u.id AS author_id,
    u.username AS author_username,
    m.id AS media_id,
    m.status,
    m.error,
    m.kind,
    m.mime,
    m.width,
    m.height,
    m.duration_s,
    m.path,
    m.thumbnail_path,
    m.blurhash,
    coalesce(
        (
            SELECT json_agg(t.name ORDER BY t.name)
            FROM post_tags AS pt
            INNER JOIN tags AS t ON pt.tag_id = t.id
            WHERE pt.post_id = p.id
        ),
        '[]'
    ) AS tags
FROM posts AS p
INNER JOIN media AS m ON p.media_id = m.id
INNER JOIN users AS u ON p.author_id = u.id
WHERE
    m.status = 'completed'
    AND (p.created_at, p.id) < (:before_created_at, :before_id)
ORDER BY p.created_at DESC, p.id DESC
LIMIT :page_size;

-- name: list_feed_by_author(author, before_created_at, before_id, page_size)
-- One author's posts.
SELECT
    p.id,
    p.caption,
    p.created_at,
    p.like_count,
    p.view_count,
    u.id AS author_id,
    u.username AS author_username,
    m.id AS media_id,
    m.status,
    m.error,
    m.kind,
    m.mime,
    m.width,
    m.height,
    m.duration_s,
    m.path,
    m.thumbnail_path,
    m.blurhash,
    coalesce(
        (
            SELECT json_agg(t.name ORDER BY t.name)
            FROM post_tags AS pt
            INNER JOIN tags AS t ON pt.tag_id = t.id
            WHERE pt.post_id = p.id
        ),
        '[]'
    ) AS tags
FROM posts AS p
INNER JOIN media AS m ON p.media_id = m.id
INNER JOIN users AS u ON p.author_id = u.id
WHERE
    p.author_id = (SELECT users.id FROM users WHERE lower(users.username) = lower(:author))
    AND m.status = 'completed'
    AND (p.created_at, p.id) < (:before_created_at, :before_id)
ORDER BY p.created_at DESC, p.id DESC
LIMIT :page_size;

-- name: list_feed_by_tag(tag, before_created_at, before_id, page_size)
-- The posts with one tag, walked through the tag's own (created_at, post_id) index.
SELECT
    p.id,
    p.caption,
    p.created_at,
    p.like_count,
    p.view_count,
    u.id AS author_id,
    u.username AS author_username,
    m.id AS media_id,
    m.status,
    m.error,
    m.kind,
    m.mime,
    m.width,
    m.height,
    m.duration_s,
    m.path,
    m.thumbnail_path,
    m.blurhash,
    coalesce(
        (
            SELECT json_agg(t.name ORDER BY t.name)
            FROM post_tags AS pt2
            INNER JOIN tags AS t ON pt2.tag_id = t.id
            WHERE pt2.post_id = p.id
        ),
        '[]'
    ) AS tags
FROM post_tags AS pt
INNER JOIN posts AS p ON pt.post_id = p.id
INNER JOIN media AS m ON p.media_id = m.id
INNER JOIN users AS u ON p.author_id = u.id
WHERE
    pt.tag_id = (SELECT tags.id FROM tags WHERE tags.name = :tag)
    AND m.status = 'completed'
    AND (pt.created_at, pt.post_id) < (:before_created_at, :before_id)
ORDER BY pt.created_at DESC, pt.post_id DESC
LIMIT :page_size;

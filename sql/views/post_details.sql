-- One definition of "a post as the API shows it": the post, its author, its media, its tags
-- (a json_agg) and the earlier post it reposts. Feed and post queries select from it;
-- PostgreSQL inlines the view, so their filters and ORDER BY still reach the indexes on posts
-- and post_tags. `repost_of` carries what a reader's view of the original depends on (its NSFW
-- flag and its author): the services name the original only to readers who may see it.
CREATE VIEW post_details AS
SELECT  -- noqa: ST06
    p.id,
    p.caption,
    p.created_at,
    p.like_count,
    p.view_count,
    p.author_id,
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
    ) AS tags,
    p.comment_count,
    CASE WHEN m.status = 'completed' THEN (
        SELECT
            json_build_object(
                'post_id', o.id, 'author', ou.username, 'distance', near.distance, 'author_id', o.author_id, 'nsfw', o.nsfw
            )
        FROM near_media AS near
        INNER JOIN posts AS o ON near.near_id = o.media_id
        INNER JOIN users AS ou ON o.author_id = ou.id
        WHERE near.media_id = m.id AND o.id < p.id AND o.removed_at IS NULL
        ORDER BY o.id
        LIMIT 1
    ) END AS repost_of,
    p.removed_at,
    p.removed_reason,
    m.status = 'completed' AND p.removed_at IS NULL AS listed,
    p.nsfw,
    p.author_deleted_at
FROM posts AS p
INNER JOIN media AS m ON p.media_id = m.id
INNER JOIN users AS u ON p.author_id = u.id;

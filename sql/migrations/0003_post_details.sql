-- One definition of "a post as the API shows it": the post, its author, its media and its
-- tags (a json_agg). Feed and post queries select from it; PostgreSQL inlines the view, so
-- their filters and ORDER BY still reach the indexes on posts and post_tags.
CREATE VIEW post_details AS
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
INNER JOIN users AS u ON p.author_id = u.id;

-- Moderation, third step: NSFW posts and blocks. Listings show an NSFW post only to readers
-- who opted in, and no post or comment by an account the reader blocks (sql/queries/feed.sql).

-- Marked by its author at upload, or by a moderator.
ALTER TABLE posts
ADD COLUMN nsfw boolean NOT NULL DEFAULT FALSE;

-- Opted in to NSFW posts in listings (PATCH /users/me).
ALTER TABLE users
ADD COLUMN show_nsfw boolean NOT NULL DEFAULT FALSE;

-- Who blocks whom. The primary key is the lookup every filtered listing makes.
CREATE TABLE blocks (
    blocker_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CONSTRAINT blocks_not_oneself CHECK (blocker_id <> blocked_id)
);

-- A post says whether it is NSFW.
CREATE OR REPLACE VIEW post_details AS
SELECT  -- noqa: ST06
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
    ) AS tags,
    p.comment_count,
    CASE WHEN m.status = 'completed' THEN (
        SELECT json_build_object('post_id', o.id, 'author', ou.username, 'distance', near.distance)
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
    p.nsfw
FROM posts AS p
INNER JOIN media AS m ON p.media_id = m.id
INNER JOIN users AS u ON p.author_id = u.id;

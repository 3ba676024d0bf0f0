-- Moderation: roles, removed posts and the moderation log.

-- Who may moderate: moderators and admins (admins also grant roles). Read with each request's
-- session check, so a change counts from the next request on.
ALTER TABLE users
ADD COLUMN role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'moderator', 'admin'));

-- A removed post is kept, files and all, so a restore brings it back; only its author and
-- moderators see it meanwhile.
ALTER TABLE posts
ADD COLUMN removed_at timestamptz,
ADD COLUMN removed_reason text CHECK (length(removed_reason) <= 500),
ADD CONSTRAINT posts_removed_has_reason CHECK ((removed_at IS NULL) = (removed_reason IS NULL));

-- Every moderation action, newest last: who (null: the command line), what, on what, why.
CREATE TABLE moderation_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    moderator_id bigint REFERENCES users (id) ON DELETE SET NULL,
    action text NOT NULL,  -- noqa: RF04
    target_type text NOT NULL CHECK (target_type IN ('user', 'post', 'comment', 'media')),
    target_id bigint NOT NULL,
    reason text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A post shows whether it was removed and why; `listed` is what every listing shows: its
-- media completed and it is not removed. `repost_of` names only posts that are not removed.
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
    m.status = 'completed' AND p.removed_at IS NULL AS listed
FROM posts AS p
INNER JOIN media AS m ON p.media_id = m.id
INNER JOIN users AS u ON p.author_id = u.id;

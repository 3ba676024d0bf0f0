-- name: insert_user(username, email, password_hash)^
-- Creates an account; a case-insensitive duplicate username or email violates a unique index.
INSERT INTO users (username, email, password_hash)
VALUES (:username, :email, :password_hash)
RETURNING id, username, email, password_hash, created_at;

-- name: get_user_by_id(id)^
-- One account by id.
SELECT id, username, email, password_hash, created_at
FROM users
WHERE id = :id;

-- name: get_user_by_login(login)^
-- One account by username or email, either compared case-insensitively, with the ban in
-- force, if any.
SELECT
    id,
    username,
    email,
    password_hash,
    created_at,
    banned_until,
    ban_reason,
    banned(users) AS banned
FROM users
WHERE lower(username) = lower(:login) OR lower(email) = lower(:login)
ORDER BY id
LIMIT 1;

-- name: get_user_by_username(username)^
-- One account by username, compared case-insensitively.
SELECT id, username, email, password_hash, created_at
FROM users
WHERE lower(username) = lower(:username);

-- name: get_profile(username)^
-- A public profile: the account, the totals of its listed posts, and its comments.
SELECT
    u.id,
    u.username,
    u.created_at,
    count(p.id) AS post_count,
    coalesce(sum(p.like_count), 0) AS like_count,
    (
        SELECT count(*) FROM comments AS c
        WHERE c.author_id = u.id AND c.deleted_at IS NULL AND c.removed_at IS NULL
    ) AS comment_count
FROM users AS u
LEFT JOIN posts AS p
    ON
        u.id = p.author_id
        AND p.removed_at IS NULL
        AND EXISTS (
            SELECT 1 FROM media AS m
            WHERE m.id = p.media_id AND m.status = 'completed'
        )
WHERE lower(u.username) = lower(:username)
GROUP BY u.id;

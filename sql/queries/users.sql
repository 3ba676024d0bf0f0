-- name: insert_user(username, email, password_hash)^
-- Creates an account; a case-insensitive duplicate username or email violates a unique index.
INSERT INTO users (username, email, password_hash)
VALUES (:username, :email, :password_hash)
RETURNING id, username, email, password_hash, created_at, show_nsfw, role;

-- name: get_user_by_id(id)^
-- One account by id.
SELECT id, username, email, password_hash, created_at, show_nsfw, role
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

-- name: set_show_nsfw(id, show_nsfw)!
-- Opts an account in to NSFW posts in its listings, or out.
UPDATE users
SET show_nsfw = :show_nsfw
WHERE id = :id;

-- name: insert_block(blocker_id, blocked_id)!
-- Blocks an account (idempotent).
INSERT INTO blocks (blocker_id, blocked_id)
VALUES (:blocker_id, :blocked_id)
ON CONFLICT DO NOTHING;

-- name: delete_block(blocker_id, blocked_id)!
-- Unblocks an account (idempotent).
DELETE FROM blocks
WHERE blocker_id = :blocker_id AND blocked_id = :blocked_id;

-- name: list_blocked_among(blocker_id, user_ids)
-- Which of these accounts the blocker blocks (one lookup of the primary key each).
SELECT blocked_id
FROM blocks
WHERE blocker_id = :blocker_id AND blocked_id = ANY(:user_ids);

-- name: list_blocks(blocker_id, after_id, page_size)
-- The accounts one blocks, in the order of their ids, keyset on it.
SELECT
    u.id,
    u.username,
    b.created_at AS blocked_at
FROM blocks AS b
INNER JOIN users AS u ON b.blocked_id = u.id
WHERE b.blocker_id = :blocker_id AND b.blocked_id > :after_id
ORDER BY b.blocked_id
LIMIT :page_size;

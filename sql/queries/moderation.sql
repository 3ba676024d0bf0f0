-- Moderation: roles and the moderation log (see 0010_moderation.sql).

-- name: set_role(username, role)^
-- Gives an account a role; the account, or nothing when there is no such user.
UPDATE users
SET role = :role
WHERE lower(username) = lower(:username)
RETURNING id, username, role;

-- name: insert_log(moderator_id, action, target_type, target_id, reason)!
-- Records a moderation action (a null moderator: the command line).
INSERT INTO moderation_log (moderator_id, action, target_type, target_id, reason)
VALUES (:moderator_id, :action, :target_type, :target_id, :reason);

-- name: list_log(before_id, page_size)
-- The moderation log, newest first, keyset on id (the first page passes the largest bigint).
SELECT
    l.id,
    l.action,
    l.target_type,
    l.target_id,
    l.reason,
    l.created_at,
    u.username AS moderator
FROM moderation_log AS l
LEFT JOIN users AS u ON l.moderator_id = u.id
WHERE l.id < :before_id
ORDER BY l.id DESC
LIMIT :page_size;


-- name: get_account(username)^
-- An account as moderation sees it: its role and its ban, whether in force or not.
SELECT
    u.id,
    u.username,
    u.role,
    banned(u) AS banned
FROM users AS u
WHERE lower(u.username) = lower(:username);

-- name: ban_user(id, reason, until)!
-- Bans an account, for good when `until` is null.
UPDATE users
SET ban_reason = :reason, banned_until = :until
WHERE id = :id;

-- name: unban_user(id)!
-- Lifts an account's ban.
UPDATE users
SET ban_reason = NULL, banned_until = NULL
WHERE id = :id;

-- name: list_ended_bans()
-- The accounts whose ban ran out, for the janitor to lift.
SELECT id
FROM users
WHERE banned_until <= now();

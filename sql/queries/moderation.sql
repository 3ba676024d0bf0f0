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

-- name: list_log(before_id, page_size, public)
-- The moderation log, newest first, keyset on id (the first page passes the largest bigint);
-- the :public log leaves out who was given which role.
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
WHERE l.id < :before_id AND NOT (:public AND starts_with(l.action, 'grant_'))
ORDER BY l.id DESC
LIMIT :page_size;

-- name: get_author_role(target_type, target_id)$
-- The role of whom a post, a comment or an account (the account itself) belongs to.
SELECT u.role
FROM users AS u
WHERE
    u.id = CASE :target_type
        WHEN 'post'
            THEN (
                SELECT p.author_id FROM posts AS p
                WHERE p.id = :target_id
            )
        WHEN 'comment'
            THEN (
                SELECT c.author_id FROM comments AS c
                WHERE c.id = :target_id
            )
        ELSE :target_id
    END;

-- name: get_last_actor(action, target_type, target_id)^
-- Who last did :action to a target (a null moderator: the command line); nothing when nobody did.
SELECT moderator_id
FROM moderation_log
WHERE action = :action AND target_type = :target_type AND target_id = :target_id
ORDER BY id DESC
LIMIT 1;


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

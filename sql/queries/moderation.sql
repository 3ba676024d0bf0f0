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

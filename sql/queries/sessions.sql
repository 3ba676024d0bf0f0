-- name: insert_session(user_id, lifetime_seconds)^
-- Opens a login session that expires with its refresh token.
INSERT INTO auth_sessions (user_id, expires_at)
VALUES (:user_id, now() + make_interval(secs => :lifetime_seconds))
RETURNING id, user_id, created_at, expires_at, revoked_at;

-- name: get_session_viewer(id, user_id)^
-- The account behind a token, read on every signed-in request so that a role change or a ban
-- counts at once: its role, whether the session is open (exists for this user, not revoked,
-- not expired), the ban in force, if any, and what its listings show (NSFW posts or not,
-- and whether it blocks anyone). Nothing when there is no such session.
SELECT
    u.role,
    u.banned_until,
    u.ban_reason,
    u.show_nsfw,
    s.revoked_at IS NULL AND s.expires_at > now() AS open,
    banned(u) AS banned,
    EXISTS(
        SELECT 1 FROM blocks AS b
        WHERE b.blocker_id = u.id
    ) AS blocking
FROM auth_sessions AS s
INNER JOIN users AS u ON s.user_id = u.id
WHERE s.id = :id AND s.user_id = :user_id;

-- name: revoke_session(id)!
-- Revokes a session, and so every token issued under it.
UPDATE auth_sessions
SET revoked_at = now()
WHERE id = :id AND revoked_at IS NULL;

-- name: revoke_user_sessions(user_id)!
-- Revokes every open session of an account (a ban).
UPDATE auth_sessions
SET revoked_at = now()
WHERE user_id = :user_id AND revoked_at IS NULL;

-- name: delete_expired_sessions()!
-- Forgets sessions that can no longer be used.
DELETE FROM auth_sessions
WHERE expires_at < now() - interval '1 day';

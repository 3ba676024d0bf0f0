-- name: insert_session(user_id, lifetime_seconds)^
-- Opens a login session that expires with its refresh token.
INSERT INTO auth_sessions (user_id, expires_at)
VALUES (:user_id, now() + make_interval(secs => :lifetime_seconds))
RETURNING id, user_id, created_at, expires_at, revoked_at;

-- name: get_session_role(id, user_id)$
-- The account's role while the session exists for this user, is not revoked and has not
-- expired; null otherwise. Read on every signed-in request, so a role change counts at once.
SELECT u.role
FROM auth_sessions AS s
INNER JOIN users AS u ON s.user_id = u.id
WHERE s.id = :id AND s.user_id = :user_id AND s.revoked_at IS NULL AND s.expires_at > now();

-- name: revoke_session(id)!
-- Revokes a session, and so every token issued under it.
UPDATE auth_sessions
SET revoked_at = now()
WHERE id = :id AND revoked_at IS NULL;

-- name: delete_expired_sessions()!
-- Forgets sessions that can no longer be used.
DELETE FROM auth_sessions
WHERE expires_at < now() - interval '1 day';

-- name: insert_session(user_id, lifetime_seconds)^
-- Opens a login session that expires with its refresh token.
INSERT INTO auth_sessions (user_id, expires_at)
VALUES (:user_id, now() + make_interval(secs => :lifetime_seconds))
RETURNING id, user_id, created_at, expires_at, revoked_at;

-- name: is_session_active(id, user_id)$
-- True while the session exists for this user, is not revoked and has not expired.
SELECT EXISTS(
    SELECT 1
    FROM auth_sessions
    WHERE id = :id AND user_id = :user_id AND revoked_at IS NULL AND expires_at > now()
) AS active;

-- name: revoke_session(id)!
-- Revokes a session, and so every token issued under it.
UPDATE auth_sessions
SET revoked_at = now()
WHERE id = :id AND revoked_at IS NULL;

-- name: delete_expired_sessions()!
-- Forgets sessions that can no longer be used.
DELETE FROM auth_sessions
WHERE expires_at < now() - interval '1 day';

-- name: try_lock_janitor(key)$
-- Only one janitor acts at a time across hosts: a session advisory lock, not waited for.
SELECT pg_try_advisory_lock(:key) AS locked;

-- name: unlock_janitor(key)$
-- Releases the janitor's advisory lock.
SELECT pg_advisory_unlock(:key) AS unlocked;

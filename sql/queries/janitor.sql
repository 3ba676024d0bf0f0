-- name: try_lock_janitor(lock_key)$
-- Only one janitor acts at a time across hosts: a session advisory lock, not waited for.
SELECT pg_try_advisory_lock(:lock_key) AS acquired;

-- name: unlock_janitor(lock_key)$
-- Releases the janitor's advisory lock.
SELECT pg_advisory_unlock(:lock_key) AS released;

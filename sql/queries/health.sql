-- name: readiness(stuck_seconds)^
-- What /readyz asks the database, in one round trip: its clock (epoch seconds), and how many
-- sessions of the running system (application_name 'memedroid') have waited on a lock for
-- longer than :stuck_seconds, with the sessions that hold those locks.
SELECT
    extract(EPOCH FROM clock_timestamp())::float8 AS clock,
    count(DISTINCT a.pid) AS stuck,
    coalesce(array_agg(DISTINCT b.blocker) FILTER (WHERE b.blocker IS NOT NULL), '{}') AS blockers
FROM pg_stat_activity AS a
LEFT JOIN LATERAL unnest(pg_blocking_pids(a.pid)) AS b (blocker) ON TRUE
WHERE
    a.datname = current_database()
    AND a.application_name = 'memedroid'
    AND a.pid <> pg_backend_pid()
    AND a.state = 'active'
    AND a.wait_event_type = 'Lock'
    AND a.query_start < now() - make_interval(secs => :stuck_seconds);

-- name: clock()$
-- The database's clock (epoch seconds), which every node's is held against.
SELECT extract(EPOCH FROM clock_timestamp())::float8 AS clock;

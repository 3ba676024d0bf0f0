-- When a counter was counted, for mirroring counts in Redis. Read back with
-- `RETURNING counted_at()` from the UPDATE of a counter row, the stamp is taken after that
-- row's lock: of two updates of one row, the one that commits later has the later stamp, and
-- Redis keeps the count with the latest stamp whatever order the mirrors arrive in.
CREATE OR REPLACE FUNCTION counted_at()
RETURNS bigint
LANGUAGE sql
VOLATILE PARALLEL SAFE
AS $$
    SELECT (extract(EPOCH FROM clock_timestamp()) * 1000000)::bigint
$$;

-- The generation a walk through hot reads: the one its cursor pinned while its ranks are
-- kept, else the current one (0 pins nothing: a first page).
CREATE OR REPLACE FUNCTION hot_generation(pinned bigint) RETURNS bigint
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN pinned = h.generation OR (h.previous_kept AND pinned = h.generation - 1) THEN pinned ELSE h.generation END
    FROM hot_ranking AS h
$$;

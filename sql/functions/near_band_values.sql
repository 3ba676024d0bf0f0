-- The values of band `band` (0-3, as media_hashes.bandN) to probe for the hashes within
-- `distance` bits of `hash`: those within (distance + 1 + band) / 4 - 1 bits of the hash's own.
-- The four allowances plus one each add up to distance + 1 (Hermite's identity), so a hash that
-- differs by more than its allowance in every band differs in more than `distance` bits: every
-- hash within `distance` is found in some band. Band 0 holds the pHash's always-set first bit,
-- so it has the fewest distinct values and the most rows per value: it gets the smallest ball.
CREATE OR REPLACE FUNCTION near_band_values(hash bigint, band integer, distance integer)
RETURNS integer[]
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT array_agg(CAST((hash >> (48 - 16 * band)) & 65535 AS integer) # mask)
    FROM band_masks
    WHERE weight <= (distance + 1 + band) / 4 - 1
$$;

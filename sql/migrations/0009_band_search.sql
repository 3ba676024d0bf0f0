-- The band values a near-duplicate search probes, computed in the database (the search itself:
-- list_near in sql/queries/hashes.sql).

-- Every 16-bit mask with the number of bits it sets: the values within r bits of a band value v
-- are v # mask for the masks of weight <= r.
CREATE TABLE band_masks (
    mask integer PRIMARY KEY CHECK (mask BETWEEN 0 AND 65535),
    weight smallint NOT NULL
);

INSERT INTO band_masks (mask, weight)
SELECT
    mask,
    bit_count(CAST(mask AS bit(16))) AS weight
FROM generate_series(0, 65535) AS mask;

CREATE INDEX band_masks_weight_idx ON band_masks (weight) INCLUDE (mask);

-- The values of band `band` (0-3, as media_hashes.bandN) to probe for the hashes within
-- `distance` bits of `hash`: those within (distance + 1 + band) / 4 - 1 bits of the hash's own.
-- The four allowances plus one each add up to distance + 1 (Hermite's identity), so a hash that
-- differs by more than its allowance in every band differs in more than `distance` bits: every
-- hash within `distance` is found in some band. Band 0 holds the pHash's always-set first bit,
-- so it has the fewest distinct values and the most rows per value: it gets the smallest ball.
CREATE FUNCTION near_band_values(hash bigint, band integer, distance integer)
RETURNS integer[]
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT array_agg(CAST((hash >> (48 - 16 * band)) & 65535 AS integer) # mask)
    FROM band_masks
    WHERE weight <= (distance + 1 + band) / 4 - 1
$$;

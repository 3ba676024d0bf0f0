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

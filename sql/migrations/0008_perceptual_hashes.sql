-- Repost detection: perceptual hashes of every completed media, searchable by Hamming
-- distance, and the near-duplicate pairs found with them (memedroid/pipeline/processing/
-- fingerprint.py says how media are hashed; bench/README.md how well it works).

-- One row per picture hashed: a still image's (and the same without its plain bars, when it
-- has any), or a clip's frames. Two pictures match when pHash and dHash are both near.
CREATE TABLE media_hashes (
    media_id bigint NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    frame smallint NOT NULL CHECK (frame >= 0),
    trimmed boolean NOT NULL,
    phash bigint NOT NULL,
    dhash bigint NOT NULL,
    -- The pHash in four 16-bit bands. Two hashes within distance d differ in at most d / 4
    -- bits of some band (pigeonhole), so a search probes each band's values within that
    -- many bits and checks the whole hashes of what it finds (sql/queries/hashes.sql).
    band0 integer GENERATED ALWAYS AS ((phash >> 48) & 65535) STORED,
    band1 integer GENERATED ALWAYS AS ((phash >> 32) & 65535) STORED,
    band2 integer GENERATED ALWAYS AS ((phash >> 16) & 65535) STORED,
    band3 integer GENERATED ALWAYS AS (phash & 65535) STORED,
    PRIMARY KEY (media_id, frame, trimmed)
);

-- Each band's index covers the whole row, so a search reads indexes only.
CREATE INDEX media_hashes_band0_idx ON media_hashes (band0) INCLUDE (phash, dhash, media_id, frame);
CREATE INDEX media_hashes_band1_idx ON media_hashes (band1) INCLUDE (phash, dhash, media_id, frame);
CREATE INDEX media_hashes_band2_idx ON media_hashes (band2) INCLUDE (phash, dhash, media_id, frame);
CREATE INDEX media_hashes_band3_idx ON media_hashes (band3) INCLUDE (phash, dhash, media_id, frame);

-- Near-duplicate media, each pair both ways, found when the later of the two completed.
CREATE TABLE similar_media (
    media_id bigint NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    similar_id bigint NOT NULL REFERENCES media (id) ON DELETE CASCADE,
    distance smallint NOT NULL CHECK (distance BETWEEN 0 AND 64),
    PRIMARY KEY (media_id, similar_id),
    CHECK (media_id <> similar_id)
);

CREATE INDEX similar_media_similar_id_idx ON similar_media (similar_id);

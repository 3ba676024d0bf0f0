-- Repost detection: perceptual hashes of every completed media, searchable by Hamming
-- distance, and the near-duplicate pairs found with them (memedroid/pipeline/processing/
-- fingerprint.py says how media are hashed; bench/README.md how well it works).

-- How many bits two 64-bit hashes differ in.
CREATE FUNCTION hamming(a bigint, b bigint)
RETURNS integer
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT bit_count(CAST(a # b AS bit(64)))::integer
$$;

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

-- Every media with the media that show the same picture: itself (distance 0) and its
-- near-duplicates.
CREATE VIEW near_media AS
SELECT
    m.id AS media_id,
    m.id AS near_id,
    0 AS distance
FROM media AS m
UNION ALL
SELECT
    s.media_id,
    s.similar_id,
    s.distance
FROM similar_media AS s;

-- A post shows what it is a repost of: the earliest completed post older than it whose media
-- is the same or a near-duplicate.
CREATE OR REPLACE VIEW post_details AS
SELECT  -- noqa: ST06
    p.id,
    p.caption,
    p.created_at,
    p.like_count,
    p.view_count,
    u.id AS author_id,
    u.username AS author_username,
    m.id AS media_id,
    m.status,
    m.error,
    m.kind,
    m.mime,
    m.width,
    m.height,
    m.duration_s,
    m.path,
    m.thumbnail_path,
    m.blurhash,
    coalesce(
        (
            SELECT json_agg(t.name ORDER BY t.name)
            FROM post_tags AS pt
            INNER JOIN tags AS t ON pt.tag_id = t.id
            WHERE pt.post_id = p.id
        ),
        '[]'
    ) AS tags,
    p.comment_count,
    CASE WHEN m.status = 'completed' THEN (
        SELECT json_build_object('post_id', o.id, 'author', ou.username, 'distance', near.distance)
        FROM near_media AS near
        INNER JOIN posts AS o ON near.near_id = o.media_id
        INNER JOIN users AS ou ON o.author_id = ou.id
        WHERE near.media_id = m.id AND o.id < p.id
        ORDER BY o.id
        LIMIT 1
    ) END AS repost_of
FROM posts AS p
INNER JOIN media AS m ON p.media_id = m.id
INNER JOIN users AS u ON p.author_id = u.id;

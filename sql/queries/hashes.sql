-- Perceptual hashes and near-duplicate media (see 0008_perceptual_hashes.sql).

-- name: insert_hashes(media_id, frames, trimmed, phashes, dhashes)!
-- Stores a media's hashes (delete_hashes first when it had some).
INSERT INTO media_hashes (media_id, frame, trimmed, phash, dhash)
SELECT :media_id, hashed.frame, hashed.trimmed, hashed.phash, hashed.dhash
FROM
    unnest(
        CAST(:frames AS smallint[]), CAST(:trimmed AS boolean[]), CAST(:phashes AS bigint[]), CAST(:dhashes AS bigint[])
    ) AS hashed (frame, trimmed, phash, dhash);

-- name: list_near(phash, dhash, max_phash, max_dhash, page_size)
-- The media with a picture near one hash, nearest first: pHash within :max_phash bits and dHash
-- within :max_dhash. Every such picture is close to the hash on some pHash band
-- (near_band_values, migration 0009 says why), so each branch is an index-only scan of one
-- band's index over those values, with the distance filter inside it.
SELECT
    near.media_id,
    min(hamming(near.phash, :phash)) AS distance
FROM (
    SELECT media_id, phash, dhash FROM media_hashes
    WHERE band0 = ANY(near_band_values(:phash, 0, :max_phash))
    UNION ALL
    SELECT media_id, phash, dhash FROM media_hashes
    WHERE band1 = ANY(near_band_values(:phash, 1, :max_phash))
    UNION ALL
    SELECT media_id, phash, dhash FROM media_hashes
    WHERE band2 = ANY(near_band_values(:phash, 2, :max_phash))
    UNION ALL
    SELECT media_id, phash, dhash FROM media_hashes
    WHERE band3 = ANY(near_band_values(:phash, 3, :max_phash))
) AS near
WHERE
    hamming(near.phash, :phash) <= :max_phash
    AND hamming(near.dhash, :dhash) <= :max_dhash
GROUP BY near.media_id
ORDER BY distance, near.media_id
LIMIT :page_size;

-- name: link_similar(media_id, similar_ids, distances)!
-- Records a media's near-duplicates, both ways (those deleted meanwhile are skipped).
INSERT INTO similar_media (media_id, similar_id, distance)
SELECT pair.media_id, pair.similar_id, found.distance
FROM unnest(CAST(:similar_ids AS bigint[]), CAST(:distances AS smallint[])) AS found (similar_id, distance)
INNER JOIN media AS m ON found.similar_id = m.id
CROSS JOIN LATERAL (VALUES (:media_id, found.similar_id), (found.similar_id, :media_id)) AS pair (media_id, similar_id)
ON CONFLICT (media_id, similar_id) DO UPDATE SET distance = least(similar_media.distance, excluded.distance);

-- name: get_first_post(media_ids)$
-- The earliest post that shows one of these media and is not removed (as repost_of).
SELECT min(id)
FROM posts
WHERE media_id = ANY(:media_ids) AND removed_at IS NULL;

-- name: list_similar_posts(post_id, page_size, show_nsfw, viewer_id)
-- The other posts the reader may see (visible_posts) whose media is this post's or a
-- near-duplicate of it, nearest first, then oldest.
SELECT d.*, near.distance
FROM posts AS p
INNER JOIN near_media AS near ON p.media_id = near.media_id
INNER JOIN visible_posts(:show_nsfw, :viewer_id) AS d ON near.near_id = d.media_id
WHERE p.id = :post_id AND d.id <> p.id
ORDER BY near.distance, d.id
LIMIT :page_size;

-- name: list_media_to_hash(after_id, missing_only, page_size)
-- Completed media in id order after :after_id (with :missing_only, those without hashes), for
-- `memedroid rehash`.
SELECT id, kind, path, width, height, duration_s
FROM media
WHERE
    id > :after_id
    AND status = 'completed'
    AND NOT (:missing_only AND EXISTS (
        SELECT 1 FROM media_hashes AS h
        WHERE h.media_id = media.id
    ))
ORDER BY id
LIMIT :page_size;

-- name: delete_hashes(media_id)!
-- Forgets a media's hashes before a rehash stores them anew.
DELETE FROM media_hashes
WHERE media_id = :media_id;

-- name: insert_banned(sha256, reason)$
-- Puts bytes on the banned list (a file's); the entry's id, or nothing when they are on it
-- already. Its hashes follow with insert_banned_hashes.
INSERT INTO banned_media (sha256, reason)
VALUES (:sha256, :reason)
ON CONFLICT (sha256) DO NOTHING
RETURNING id;

-- name: insert_banned_media(media_id, reason)$
-- Puts a media on the banned list, its bytes and its hashes; the entry's id, or nothing when
-- its bytes are on it already.
WITH entry AS (
    INSERT INTO banned_media (sha256, media_id, reason)
    SELECT m.sha256, m.id, :reason FROM media AS m
    WHERE m.id = :media_id
    ON CONFLICT (sha256) DO NOTHING
    RETURNING id
),

copied AS (
    INSERT INTO banned_hashes (banned_id, frame, trimmed, phash, dhash)
    SELECT entry.id, h.frame, h.trimmed, h.phash, h.dhash
    FROM entry, media_hashes AS h
    WHERE h.media_id = :media_id
)

SELECT id FROM entry;

-- name: insert_banned_hashes(banned_id, frames, trimmed, phashes, dhashes)!
-- Stores the perceptual hashes of a banned-list entry.
INSERT INTO banned_hashes (banned_id, frame, trimmed, phash, dhash)
SELECT :banned_id, hashed.frame, hashed.trimmed, hashed.phash, hashed.dhash
FROM
    unnest(
        CAST(:frames AS smallint[]), CAST(:trimmed AS boolean[]), CAST(:phashes AS bigint[]), CAST(:dhashes AS bigint[])
    ) AS hashed (frame, trimmed, phash, dhash);

-- name: get_banned_sha256(sha256)$
-- The banned-list entry of these bytes, if any.
SELECT id
FROM banned_media
WHERE sha256 = :sha256;

-- name: list_banned_near(phash, dhash, max_phash, max_dhash)
-- The banned-list entries with a picture near one hash (as list_near), nearest first.
SELECT
    banned_id,
    min(hamming(phash, :phash)) AS distance
FROM banned_hashes
WHERE hamming(phash, :phash) <= :max_phash AND hamming(dhash, :dhash) <= :max_dhash
GROUP BY banned_id
ORDER BY distance, banned_id;

-- name: get_media_id_of_sha256(sha256)$
-- The media of these bytes, if any.
SELECT id
FROM media
WHERE sha256 = :sha256;

-- name: get_post_media_banned(post_id)$
-- Whether the media a post shows is on the banned list.
SELECT count(*) > 0 AS banned
FROM posts AS p
INNER JOIN media AS m ON p.media_id = m.id
INNER JOIN banned_media AS b ON m.sha256 = b.sha256
WHERE p.id = :post_id;

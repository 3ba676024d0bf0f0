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

-- Reports on posts and comments, and the moderation queue (see 0011_bans_and_reports.sql).

-- name: insert_report(reporter_id, target_type, target_id, reason, note)$
-- Files a report; its id, or nothing when the reporter has one open on the target already.
INSERT INTO reports (reporter_id, target_type, target_id, reason, note)
VALUES (:reporter_id, :target_type, :target_id, :reason, :note)
ON CONFLICT (reporter_id, target_type, target_id) WHERE resolved_at IS NULL DO NOTHING
RETURNING id;

-- name: list_report_groups(resolved, after_id, page_size)
-- The queue: one entry per reported target (open), or per resolution of one (resolved), with
-- how many reports it holds, their reasons and notes; oldest first by its first report,
-- keyset on that report's id (the first page passes 0).
SELECT
    r.target_type,
    r.target_id,
    r.resolved_at,
    min(r.id) AS first_id,
    count(*) AS report_count,
    array_agg(DISTINCT r.reason ORDER BY r.reason) AS reasons,
    coalesce(array_agg(r.note ORDER BY r.id) FILTER (WHERE r.note <> ''), '{}') AS notes,
    min(r.created_at) AS first_reported_at,
    max(r.created_at) AS last_reported_at,
    min(r.resolution) AS resolution,
    min(m.username) AS resolved_by
FROM reports AS r
LEFT JOIN users AS m ON r.resolved_by = m.id
WHERE (r.resolved_at IS NOT NULL) = :resolved
GROUP BY r.target_type, r.target_id, r.resolved_at
HAVING min(r.id) > :after_id
ORDER BY first_id
LIMIT :page_size;

-- name: resolve_reports(target_type, target_id, moderator_id, resolution)$
-- Resolves every open report on a target at once; how many there were.
WITH resolved AS (
    UPDATE reports
    SET resolved_at = now(), resolved_by = :moderator_id, resolution = :resolution
    WHERE target_type = :target_type AND target_id = :target_id AND resolved_at IS NULL
    RETURNING id
)

SELECT count(*) FROM resolved;

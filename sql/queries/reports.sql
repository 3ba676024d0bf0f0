-- Reports on posts and comments, and the moderation queue (see 0011_bans_and_reports.sql).

-- name: insert_report(reporter_id, target_type, target_id, reason, note)$
-- Files a report; its id, or nothing when the reporter has one open on the target already.
INSERT INTO reports (reporter_id, target_type, target_id, reason, note)
VALUES (:reporter_id, :target_type, :target_id, :reason, :note)
ON CONFLICT (reporter_id, target_type, target_id) WHERE resolved_at IS NULL DO NOTHING
RETURNING id;

-- name: list_report_groups(resolved, after_id, page_size, notes_shown)
-- The queue: one entry per reported target (open), or per resolution of one (resolved), with
-- how many reports it holds, their reasons, how many notes and the latest :notes_shown of them
-- (list_report_notes pages the rest); oldest first by its first report, keyset on that
-- report's id (the first page passes 0).
WITH grouped AS (
    SELECT
        r.target_type,
        r.target_id,
        r.resolved_at,
        min(r.id) AS first_id,
        count(*) AS report_count,
        array_agg(DISTINCT r.reason ORDER BY r.reason) AS reasons,
        count(*) FILTER (WHERE r.note <> '') AS note_count,
        min(r.created_at) AS first_reported_at,
        max(r.created_at) AS last_reported_at,
        min(r.resolution) AS resolution,
        min(r.resolved_by) AS resolved_by_id
    FROM reports AS r
    WHERE (r.resolved_at IS NOT NULL) = :resolved
    GROUP BY r.target_type, r.target_id, r.resolved_at
    HAVING min(r.id) > :after_id
    ORDER BY first_id
    LIMIT :page_size
)

SELECT
    g.target_type, g.target_id, g.resolved_at, g.first_id, g.report_count, g.reasons, g.note_count,
    g.first_reported_at, g.last_reported_at, g.resolution, m.username AS resolved_by,
    coalesce(n.notes, '{}') AS notes
FROM grouped AS g
LEFT JOIN users AS m ON g.resolved_by_id = m.id
-- The latest few notes of each group: a range of reports_open_idx each, not all of them.
CROSS JOIN
    LATERAL (  -- noqa: ST05
        SELECT array_agg(latest.note ORDER BY latest.id DESC) AS notes
        FROM (
            SELECT x.id, x.note
            FROM reports AS x
            WHERE
                x.target_type = g.target_type
                AND x.target_id = g.target_id
                AND x.resolved_at IS NOT DISTINCT FROM g.resolved_at
                AND x.note <> ''
            ORDER BY x.id DESC
            LIMIT :notes_shown
        ) AS latest
    ) AS n
ORDER BY g.first_id;

-- name: list_report_notes(target_type, target_id, resolved, before_id, page_size)
-- The notes of a target's open (or resolved) reports, newest first, keyset on the report's id.
SELECT id, reason, note, created_at
FROM reports
WHERE
    target_type = :target_type
    AND target_id = :target_id
    AND (resolved_at IS NOT NULL) = :resolved
    AND note <> ''
    AND id < :before_id
ORDER BY id DESC
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

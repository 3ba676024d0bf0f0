-- name: insert_media(sha256, source_type, source_bytes, request_id)^
-- Records new bytes as a pending job; returns nothing when the same bytes are already known.
INSERT INTO media (sha256, source_type, source_bytes, request_id)
VALUES (:sha256, :source_type, :source_bytes, :request_id)
ON CONFLICT (sha256) DO NOTHING
RETURNING id, sha256, status, error, rejected, attempts, source_type, request_id;

-- name: hold_raw_file(sha256)!
-- An upload holds its raw file against the orphan sweep, from before it stores the file until
-- its transaction ends (by then the row that needs the file is committed, or nothing is).
SELECT pg_advisory_xact_lock_shared(raw_file_lock(:sha256));

-- name: hold_orphan_raw_files(files)
-- The orphan sweep's hold on raw files (hex names): those no upload holds now, locked against
-- uploads of the same bytes until the sweep's transaction ends.
SELECT file AS sha256
FROM unnest(CAST(:files AS text[])) AS candidate (file)
WHERE pg_try_advisory_xact_lock(raw_file_lock(decode(file, 'hex')));

-- name: get_media_by_sha256(sha256)^
-- The media row for some bytes, locked against a concurrent finalizer until the upload commits.
SELECT id, sha256, status, error, rejected, attempts, source_type, request_id
FROM media
WHERE sha256 = :sha256
FOR SHARE;

-- name: count_backlog()$
-- Media accepted but not finished: the durable backlog behind MAX_BACKLOG.
SELECT count(*) AS backlog
FROM media
WHERE status IN ('pending', 'processing');

-- name: mark_media_queued(ids)!
-- Notes when rows were last put on the job queue, so the sweep leaves them alone for a while.
UPDATE media
SET queued_at = now()
WHERE id = ANY(:ids) AND status = 'pending';

-- name: notify_jobs(ids)$
-- Tells the nodes that run media workers of pending jobs this node could not offer to workers of
-- its own (a node with HTTP alone, or a full queue): the ids, comma-separated. Delivered on commit.
SELECT pg_notify('memedroid_jobs', array_to_string(CAST(:ids AS bigint[]), ','));

-- name: listen_for_jobs#
-- The session hears of those jobs (the supervisor of a node with media workers listens).
LISTEN memedroid_jobs;

-- name: stop_listening#
UNLISTEN memedroid_jobs;

-- name: claim_media(id, lease_token, lease_owner)^
-- A worker takes a pending job: one conditional update; no row means someone else has it.
UPDATE media
SET
    status = 'processing',
    attempts = attempts + 1,
    lease_token = :lease_token,
    lease_owner = :lease_owner,
    heartbeat_at = now(),
    updated_at = now()
WHERE id = :id AND status = 'pending'
RETURNING id, sha256, source_type, source_bytes, attempts, request_id;

-- name: heartbeat_media(id, lease_token)!
-- Keeps a lease alive while its worker is busy.
UPDATE media
SET heartbeat_at = now()
WHERE id = :id AND lease_token = :lease_token AND status = 'processing';

-- name: lock_leased_media(id, lease_token)^
-- The finalizer's fence: the row, locked, only while this lease still holds it.
SELECT id, sha256, attempts, request_id
FROM media
WHERE id = :id AND lease_token = :lease_token AND status = 'processing'
FOR UPDATE;

-- name: complete_media(id, kind, mime, width, height, duration_s, path, thumbnail_path, variants, blurhash)^
-- Records a finished job (the caller holds the fenced row lock).
UPDATE media
SET
    status = 'completed',
    error = NULL,
    kind = :kind,
    mime = :mime,
    width = :width,
    height = :height,
    duration_s = :duration_s,
    path = :path,
    thumbnail_path = :thumbnail_path,
    variants = :variants,
    blurhash = :blurhash,
    lease_token = NULL,
    lease_owner = NULL,
    heartbeat_at = NULL,
    updated_at = now(),
    finished_at = now()
WHERE id = :id
RETURNING id, status;

-- name: fail_or_retry_media(id, error, permanent, max_attempts)^
-- Ends an attempt that did not succeed: failed for good when the input is bad (rejected) or
-- attempts are used up, otherwise pending again for another try.
UPDATE media
SET
    status = CASE WHEN :permanent OR attempts >= :max_attempts THEN 'failed' ELSE 'pending' END,
    error = CASE WHEN :permanent OR attempts >= :max_attempts THEN :error END,
    rejected = :permanent,
    lease_token = NULL,
    lease_owner = NULL,
    heartbeat_at = NULL,
    queued_at = NULL,
    updated_at = now(),
    finished_at = CASE WHEN :permanent OR attempts >= :max_attempts THEN now() END
WHERE id = :id
RETURNING id, status, attempts, error, request_id;

-- name: hand_back_media(id, lease_token)^
-- A worker that is stopping returns its job untouched: the attempt does not count.
UPDATE media
SET
    status = 'pending',
    attempts = greatest(attempts - 1, 0),
    lease_token = NULL,
    lease_owner = NULL,
    heartbeat_at = NULL,
    queued_at = NULL,
    updated_at = now()
WHERE id = :id AND lease_token = :lease_token AND status = 'processing'
RETURNING id, status, attempts, error, request_id;

-- name: release_media(id, lease_token, error, max_attempts)^
-- The supervisor ends the attempt of a worker it killed (timeout) or lost (crash).
UPDATE media
SET
    status = CASE WHEN attempts >= :max_attempts THEN 'failed' ELSE 'pending' END,
    error = CASE WHEN attempts >= :max_attempts THEN :error END,
    lease_token = NULL,
    lease_owner = NULL,
    heartbeat_at = NULL,
    queued_at = NULL,
    updated_at = now(),
    finished_at = CASE WHEN attempts >= :max_attempts THEN now() END
WHERE id = :id AND lease_token = :lease_token AND status = 'processing'
RETURNING id, status, attempts, error, request_id;

-- name: expire_media_leases(lease_seconds, reclaim_node, node_prefix, live_owner, max_attempts, stuck_seconds)
-- The janitor's recovery: processing rows whose heartbeat stopped (or whose owner is an earlier
-- boot of this node, NODE_NAME) go back to pending, or to failed when attempts are used up or the
-- job has been processing for longer than anything should. A row another session has locked
-- waits for a later round: one lock held somewhere stops no other recovery.
UPDATE media
SET
    status = CASE
        WHEN attempts >= :max_attempts OR updated_at < now() - make_interval(secs => :stuck_seconds)
            THEN 'failed'
        ELSE 'pending'
    END,
    error = CASE
        WHEN updated_at < now() - make_interval(secs => :stuck_seconds)
            THEN 'processing took too long and was abandoned'
        WHEN attempts >= :max_attempts
            THEN 'processing was interrupted too many times (the worker crashed or timed out)'
    END,
    finished_at = CASE
        WHEN attempts >= :max_attempts OR updated_at < now() - make_interval(secs => :stuck_seconds)
            THEN now()
    END,
    lease_token = NULL,
    lease_owner = NULL,
    heartbeat_at = NULL,
    queued_at = NULL,
    updated_at = now()
WHERE
    id IN (
        SELECT id
        FROM media
        WHERE
            status = 'processing'
            AND (
                heartbeat_at < now() - make_interval(secs => :lease_seconds)
                OR updated_at < now() - make_interval(secs => :stuck_seconds)
                OR (:reclaim_node AND starts_with(lease_owner, :node_prefix) AND lease_owner <> :live_owner)
            )
        FOR UPDATE SKIP LOCKED
    )
RETURNING id, status, attempts, error, request_id;

-- name: list_media_to_enqueue(requeue_seconds, max_count)
-- Pending jobs nobody has queued recently, oldest first.
SELECT id, request_id
FROM media
WHERE
    status = 'pending'
    AND (queued_at IS NULL OR queued_at < now() - make_interval(secs => :requeue_seconds))
ORDER BY id
LIMIT :max_count;

-- name: list_live_raw_hashes(files, failed_retention_seconds)
-- Of these hashes (hex), those whose raw file is still needed: the job is not finished, or it
-- failed recently (kept so that an operator can `reprocess` it).
SELECT encode(sha256, 'hex') AS sha256
FROM media
WHERE
    sha256 IN (SELECT decode(file, 'hex') FROM unnest(CAST(:files AS text[])) AS candidate (file))
    AND (
        status IN ('pending', 'processing')
        OR (status = 'failed' AND finished_at > now() - make_interval(secs => :failed_retention_seconds))
    );

-- name: list_live_leases()
-- Lease tokens of jobs being processed: their tmp folders are in use.
SELECT lease_token::text AS lease_token
FROM media
WHERE status = 'processing' AND lease_token IS NOT NULL;

-- name: list_kept_media_hashes()
-- Hashes whose final files must be kept (anything not failed).
SELECT encode(sha256, 'hex') AS sha256
FROM media
WHERE status <> 'failed';

-- name: count_media_by_status()
-- How many media rows are in each state.
SELECT status, count(*) AS media
FROM media
GROUP BY status
ORDER BY status;

-- name: requeue_failed_media(ids)
-- Gives failed media a fresh set of attempts (the operator's `reprocess`, or a new upload of
-- bytes whose processing failed without rejecting them).
UPDATE media
SET
    status = 'pending',
    attempts = 0,
    error = NULL,
    rejected = FALSE,
    queued_at = NULL,
    finished_at = NULL,
    updated_at = now()
WHERE id = ANY(:ids) AND status = 'failed'
RETURNING id, encode(sha256, 'hex') AS sha256;

-- name: list_failed_media_ids()
-- Every failed media row.
SELECT id
FROM media
WHERE status = 'failed'
ORDER BY id;

-- name: unsettle_media(media_id)!
-- Notes that the files of a media may have to move (a ban; other changes, triggers note).
SELECT unsettle_media(:media_id);

-- name: lock_unsettled_media(max_count)
-- Media whose files may have to move, and their rows, locked for the move (those another
-- process is moving are passed over; an upload of the same bytes holding its media row is
-- waited for).
WITH claimed AS (
    SELECT u.media_id
    FROM unsettled_media AS u
    ORDER BY u.media_id
    LIMIT :max_count
    FOR UPDATE SKIP LOCKED
)

SELECT m.id
FROM media AS m
INNER JOIN claimed AS c ON m.id = c.media_id
ORDER BY m.id
FOR UPDATE OF m;

-- name: get_media_places(ids)
-- Where the files of these media belong, read once their rows are locked: `media` (public: a
-- post that is not removed shows them), `quarantine` (none does), `gone` (banned: deleted
-- everywhere), or null (not completed: no files to move).
SELECT  -- noqa: ST06
    m.id,
    encode(m.sha256, 'hex') AS sha256,
    m.path,
    m.thumbnail_path,
    m.quarantined_at IS NOT NULL AS quarantined,
    CASE
        WHEN m.status <> 'completed' THEN NULL
        WHEN EXISTS (
            SELECT 1 FROM banned_media AS b
            WHERE b.sha256 = m.sha256
        ) THEN 'gone'
        WHEN EXISTS (
            SELECT 1 FROM posts AS p
            WHERE p.media_id = m.id AND p.removed_at IS NULL
        ) THEN 'media'
        ELSE 'quarantine'
    END AS place
FROM media AS m
WHERE m.id = ANY(:ids)
ORDER BY m.id;

-- name: set_media_quarantined(ids, quarantined)!
-- Records that these media's files are out of the public area (since when), or back in it.
UPDATE media
SET quarantined_at = CASE WHEN :quarantined THEN coalesce(quarantined_at, now()) END
WHERE id = ANY(:ids);

-- name: delete_unsettled_media(ids)!
-- These media's files are where they belong.
DELETE FROM unsettled_media
WHERE media_id = ANY(:ids);

-- name: list_quarantined_media(since)
-- The final files taken out of the public area since a time (quarantined or, banned, deleted):
-- the URLs a CDN in front must purge.
SELECT
    path,
    thumbnail_path
FROM media
WHERE quarantined_at >= :since
ORDER BY quarantined_at, id;

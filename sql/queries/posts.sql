-- name: insert_post(author_id, media_id, caption, nsfw)^
-- Creates a post for some media.
INSERT INTO posts (author_id, media_id, caption, nsfw)
VALUES (:author_id, :media_id, :caption, :nsfw)
RETURNING id;

-- name: insert_tags(names)!
-- Makes sure every named tag exists.
INSERT INTO tags (name)
SELECT unnest(CAST(:names AS text[]))
ON CONFLICT (name) DO NOTHING;

-- name: tag_post(post_id, names)!
-- Attaches the named tags to a post (with the post's time, for tag feeds).
INSERT INTO post_tags (post_id, tag_id, created_at)
SELECT p.id AS post_id, t.id AS tag_id, p.created_at
FROM posts AS p
CROSS JOIN tags AS t
WHERE p.id = :post_id AND t.name = ANY(:names)
ON CONFLICT DO NOTHING;

-- name: get_post(id)^
-- One post with its author, media and tags, whatever its status.
SELECT d.*
FROM post_details AS d
WHERE d.id = :id;

-- name: get_post_status(id)$
-- What may be done with a post: its media's status, or 'removed' (only its author and
-- moderators see it then; nobody likes or comments on it).
SELECT CASE WHEN p.removed_at IS NULL THEN m.status ELSE 'removed' END AS status
FROM posts AS p
INNER JOIN media AS m ON p.media_id = m.id
WHERE p.id = :id;

-- name: get_post_visibility(id)^
-- Who may see a post (services/posts.visible): its author, whether it is listed, and whether
-- its author deleted it after moderators removed it.
SELECT author_id, listed, author_deleted_at
FROM post_details
WHERE id = :id;

-- name: list_post_ids_by_media(media_id)
-- The posts that show some media (several, when the same bytes were uploaded again).
SELECT id
FROM posts
WHERE media_id = :media_id
ORDER BY id;

-- name: delete_post(id)^
-- Deletes a post (its tags and likes go with it); returns its media.
DELETE FROM posts
WHERE id = :id
RETURNING id, media_id;

-- name: mark_author_deleted(id)!
-- A removed post its author deleted: kept, for moderators alone, until purge-removed takes it.
UPDATE posts
SET author_deleted_at = now()
WHERE id = :id AND removed_at IS NOT NULL AND author_deleted_at IS NULL;

-- name: delete_unused_media(id)^
-- Deletes a media row no post shows any more; returns what its files were.
DELETE FROM media
WHERE
    id = :id
    AND NOT EXISTS (
        SELECT 1 FROM posts
        WHERE posts.media_id = :id
    )
RETURNING id, encode(sha256, 'hex') AS sha256, path, thumbnail_path;

-- name: remove_post(id, reason)$
-- Removes a post from every listing (files and rows kept); its id, or null when it was removed already.
UPDATE posts
SET removed_at = now(), removed_reason = :reason
WHERE id = :id AND removed_at IS NULL
RETURNING id;

-- name: restore_post(id)$
-- Brings a removed post back; its id, or null when it was not removed.
UPDATE posts
SET removed_at = NULL, removed_reason = NULL, removed_by_ban = FALSE
WHERE id = :id AND removed_at IS NOT NULL
RETURNING id;

-- name: remove_authored_posts(author_id, reason)!
-- A ban that hides its user's content: removes every post of theirs that is not removed yet,
-- marked removed_by_ban for the unban.
UPDATE posts
SET removed_at = now(), removed_reason = :reason, removed_by_ban = TRUE
WHERE author_id = :author_id AND removed_at IS NULL;

-- name: restore_authored_posts(author_id)!
-- Lifting that ban: restores the posts it removed, but those whose media was banned meanwhile
-- (they stay removed, for the media's ban).
UPDATE posts AS p
SET removed_at = NULL, removed_reason = NULL, removed_by_ban = FALSE
WHERE
    p.author_id = :author_id
    AND p.removed_by_ban
    AND NOT EXISTS (
        SELECT 1
        FROM media AS m
        INNER JOIN banned_media AS b ON m.sha256 = b.sha256
        WHERE m.id = p.media_id
    );

-- name: list_posts(ids)
-- Some posts by id, in no particular order (the moderation queue's targets).
SELECT d.*
FROM post_details AS d
WHERE d.id = ANY(:ids);

-- name: set_post_nsfw(id, nsfw)$
-- Marks a post NSFW or not; its id, or null when it was so already.
UPDATE posts
SET nsfw = :nsfw
WHERE id = :id AND nsfw <> :nsfw
RETURNING id;

-- name: remove_media_posts(media_id, reason)!
-- Removes every post that shows some media and is not removed yet (the media is banned).
UPDATE posts
SET removed_at = now(), removed_reason = :reason
WHERE media_id = :media_id AND removed_at IS NULL;

-- name: list_purgeable_posts(removed_before)
-- The posts removed before a time, for `memedroid purge-removed`; not those a ban with an end
-- hides (its end brings them back).
SELECT
    p.id,
    p.media_id
FROM posts AS p
WHERE
    p.removed_at < :removed_before
    AND NOT (p.removed_by_ban AND EXISTS (
        SELECT 1 FROM users AS u
        WHERE u.id = p.author_id AND u.banned_until IS NOT NULL
    ))
ORDER BY p.id;

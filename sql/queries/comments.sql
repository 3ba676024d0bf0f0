-- Comments (see 0006_comments.sql). A thread page is the replies to one parent (0: the
-- post's top-tier comments) in keyset order, each with its first :replies replies and
-- theirs, three levels in all, read one tier at a time: every step is an index range of
-- comments_thread_*_idx.

-- name: insert_comment(post_id, parent_id, author_id, depth, body)^
-- Adds a comment and counts it on its post and, for a reply, on its parent, in one statement;
-- returns its id, the post's comment count and when it was counted.
WITH added AS (
    INSERT INTO comments (post_id, parent_id, author_id, depth, body)
    VALUES (:post_id, :parent_id, :author_id, :depth, :body)
    RETURNING id, post_id, parent_id
),

counted AS (
    UPDATE posts
    SET comment_count = posts.comment_count + 1
    FROM added
    WHERE posts.id = added.post_id
    RETURNING posts.comment_count, counted_at()
),

replied AS (
    UPDATE comments
    SET reply_count = comments.reply_count + 1
    FROM added
    WHERE comments.id = added.parent_id
)

SELECT
    added.id,
    counted.comment_count AS count,
    counted.counted_at
FROM added, counted;

-- name: get_comment(id)^
-- One comment, deleted or not.
SELECT d.*
FROM comment_details AS d
WHERE d.id = :id;

-- name: list_comments(ids)
-- Some comments by id, in no particular order (the moderation queue's targets).
SELECT d.*
FROM comment_details AS d
WHERE d.id = ANY(:ids);

-- name: delete_comment(id)^
-- Erases a comment's body (it keeps its place among the replies) and uncounts it on its
-- post unless it was removed; returns the post's comment count and when it was counted
-- (counted_at() in 0007_counted_at.sql), or nothing when it was deleted already.
WITH erased AS (
    UPDATE comments
    SET body = '', deleted_at = now()
    WHERE id = :id AND deleted_at IS NULL
    RETURNING post_id, removed_at IS NULL AS counted
)

UPDATE posts
SET comment_count = posts.comment_count - erased.counted::integer
FROM erased
WHERE posts.id = erased.post_id
RETURNING posts.comment_count AS count, counted_at();

-- name: remove_comment(id, reason)^
-- A moderator's removal: the comment keeps its place without its body, and leaves its post's
-- comment count unless it was deleted; the count, or nothing when it was removed already.
WITH removed AS (
    UPDATE comments
    SET removed_at = now(), removed_reason = :reason
    WHERE id = :id AND removed_at IS NULL
    RETURNING post_id, deleted_at IS NULL AS counted
)

UPDATE posts
SET comment_count = posts.comment_count - removed.counted::integer
FROM removed
WHERE posts.id = removed.post_id
RETURNING posts.comment_count AS count, counted_at();

-- name: restore_comment(id)^
-- Brings a removed comment back and counts it again unless it was deleted meanwhile; the
-- count, or nothing when it was not removed.
WITH restored AS (
    UPDATE comments
    SET removed_at = NULL, removed_reason = NULL, removed_by_ban = FALSE
    WHERE id = :id AND removed_at IS NOT NULL
    RETURNING post_id, deleted_at IS NULL AS counted
)

UPDATE posts
SET comment_count = posts.comment_count + restored.counted::integer
FROM restored
WHERE posts.id = restored.post_id
RETURNING posts.comment_count AS count, counted_at();

-- name: remove_authored_comments(author_id, reason)
-- A ban that hides its user's content: removes every comment of theirs that is not removed
-- yet (marked removed_by_ban, for the unban), and uncounts them; each post's new comment
-- count and when it was counted.
WITH removed AS (
    UPDATE comments
    SET removed_at = now(), removed_reason = :reason, removed_by_ban = TRUE
    WHERE author_id = :author_id AND removed_at IS NULL
    RETURNING post_id, deleted_at IS NULL AS counted
)

UPDATE posts
SET comment_count = posts.comment_count - changed.n
FROM (
    SELECT
        removed.post_id,
        count(*) FILTER (WHERE removed.counted) AS n
    FROM removed
    GROUP BY removed.post_id
) AS changed
WHERE posts.id = changed.post_id
RETURNING posts.id AS post_id, posts.comment_count AS count, counted_at();

-- name: restore_authored_comments(author_id)
-- Lifting that ban: restores what it removed and counts it again; as remove_authored_comments.
WITH restored AS (
    UPDATE comments
    SET removed_at = NULL, removed_reason = NULL, removed_by_ban = FALSE
    WHERE author_id = :author_id AND removed_by_ban
    RETURNING post_id, deleted_at IS NULL AS counted
)

UPDATE posts
SET comment_count = posts.comment_count + changed.n
FROM (
    SELECT
        restored.post_id,
        count(*) FILTER (WHERE restored.counted) AS n
    FROM restored
    GROUP BY restored.post_id
) AS changed
WHERE posts.id = changed.post_id
RETURNING posts.id AS post_id, posts.comment_count AS count, counted_at();

-- name: list_thread_new(post_id, parent_id, before_id, page_size, replies, viewer_id, unlisted_too)
-- A thread page, newest first at every tier; without the comments of authors :viewer_id
-- blocks (0: nobody's), nor their replies; nothing of a post nobody may see (visible_posts:
-- NSFW and blocks aside, those the services check), unless :unlisted_too (its author or a
-- moderator reads).
WITH RECURSIVE thread AS (
    SELECT
        page.id, page.post_id, page.parent_id, page.depth, page.body, page.like_count, page.reply_count,
        page.created_at, page.deleted_at, page.author_id, page.removed_at, page.removed_reason, 1 AS tier
    FROM (
        SELECT
            c.id, c.post_id, c.parent_id, c.depth, c.body, c.like_count, c.reply_count, c.created_at,
            c.deleted_at, c.author_id, c.removed_at, c.removed_reason
        FROM comments AS c
        WHERE
            c.post_id = :post_id
            AND coalesce(c.parent_id, 0) = :parent_id
            AND c.id < :before_id
            AND NOT EXISTS (
                SELECT 1 FROM blocks AS b
                WHERE b.blocker_id = :viewer_id AND b.blocked_id = c.author_id
            )
            AND (:unlisted_too OR EXISTS (
                SELECT 1 FROM visible_posts(TRUE, 0) AS d
                WHERE d.id = :post_id
            ))
        ORDER BY c.id DESC
        LIMIT :page_size
    ) AS page
    UNION ALL
    SELECT
        reply.id, reply.post_id, reply.parent_id, reply.depth, reply.body, reply.like_count, reply.reply_count,
        reply.created_at, reply.deleted_at, reply.author_id, reply.removed_at, reply.removed_reason, thread.tier + 1 AS tier
    FROM thread
    CROSS JOIN
        LATERAL (
            SELECT
                r.id, r.post_id, r.parent_id, r.depth, r.body, r.like_count, r.reply_count, r.created_at,
                r.deleted_at, r.author_id, r.removed_at, r.removed_reason
            FROM comments AS r
            WHERE
                r.post_id = thread.post_id
                AND coalesce(r.parent_id, 0) = thread.id
                AND NOT EXISTS (
                    SELECT 1 FROM blocks AS b
                    WHERE b.blocker_id = :viewer_id AND b.blocked_id = r.author_id
                )
            ORDER BY r.id DESC
            LIMIT :replies
        ) AS reply
    WHERE thread.tier < 3
)

SELECT
    t.id, t.post_id, t.parent_id, t.depth, t.body, t.like_count, t.reply_count, t.created_at,
    t.deleted_at, t.author_id, t.removed_at, t.removed_reason,
    (
        SELECT u.username FROM users AS u
        WHERE u.id = t.author_id
    ) AS author_username
FROM thread AS t
ORDER BY t.tier ASC, t.id DESC;

-- name: list_thread_top(post_id, parent_id, before_likes, before_id, page_size, replies, viewer_id, unlisted_too)
-- A thread page, most liked first at every tier (ties newest first); without the comments of
-- authors :viewer_id blocks, nor their replies; nothing of a post nobody may see, unless
-- :unlisted_too.
WITH RECURSIVE thread AS (
    SELECT
        page.id, page.post_id, page.parent_id, page.depth, page.body, page.like_count, page.reply_count,
        page.created_at, page.deleted_at, page.author_id, page.removed_at, page.removed_reason, 1 AS tier
    FROM (
        SELECT
            c.id, c.post_id, c.parent_id, c.depth, c.body, c.like_count, c.reply_count, c.created_at,
            c.deleted_at, c.author_id, c.removed_at, c.removed_reason
        FROM comments AS c
        WHERE
            c.post_id = :post_id
            AND coalesce(c.parent_id, 0) = :parent_id
            AND (c.like_count, c.id) < (:before_likes, :before_id)
            AND NOT EXISTS (
                SELECT 1 FROM blocks AS b
                WHERE b.blocker_id = :viewer_id AND b.blocked_id = c.author_id
            )
            AND (:unlisted_too OR EXISTS (
                SELECT 1 FROM visible_posts(TRUE, 0) AS d
                WHERE d.id = :post_id
            ))
        ORDER BY c.like_count DESC, c.id DESC
        LIMIT :page_size
    ) AS page
    UNION ALL
    SELECT
        reply.id, reply.post_id, reply.parent_id, reply.depth, reply.body, reply.like_count, reply.reply_count,
        reply.created_at, reply.deleted_at, reply.author_id, reply.removed_at, reply.removed_reason, thread.tier + 1 AS tier
    FROM thread
    CROSS JOIN
        LATERAL (
            SELECT
                r.id, r.post_id, r.parent_id, r.depth, r.body, r.like_count, r.reply_count, r.created_at,
                r.deleted_at, r.author_id, r.removed_at, r.removed_reason
            FROM comments AS r
            WHERE
                r.post_id = thread.post_id
                AND coalesce(r.parent_id, 0) = thread.id
                AND NOT EXISTS (
                    SELECT 1 FROM blocks AS b
                    WHERE b.blocker_id = :viewer_id AND b.blocked_id = r.author_id
                )
            ORDER BY r.like_count DESC, r.id DESC
            LIMIT :replies
        ) AS reply
    WHERE thread.tier < 3
)

SELECT
    t.id, t.post_id, t.parent_id, t.depth, t.body, t.like_count, t.reply_count, t.created_at,
    t.deleted_at, t.author_id, t.removed_at, t.removed_reason,
    (
        SELECT u.username FROM users AS u
        WHERE u.id = t.author_id
    ) AS author_username
FROM thread AS t
ORDER BY t.tier ASC, t.like_count DESC, t.id DESC;

-- name: list_user_comments(author, before_id, page_size, show_nsfw, viewer_id)
-- One user's comments (not the deleted or removed ones, nor those under a post the reader may
-- not see: visible_posts), newest first; none when :viewer_id blocks the user.
SELECT d.*
FROM comment_details AS d
WHERE
    d.author_id = (
        SELECT users.id FROM users
        WHERE
            lower(users.username) = lower(:author)
            AND NOT EXISTS (
                SELECT 1 FROM blocks AS b
                WHERE b.blocker_id = :viewer_id AND b.blocked_id = users.id
            )
    )
    AND d.deleted_at IS NULL
    AND d.removed_at IS NULL
    AND EXISTS (
        SELECT 1 FROM visible_posts(:show_nsfw, :viewer_id) AS p
        WHERE p.id = d.post_id
    )
    AND d.id < :before_id
ORDER BY d.id DESC
LIMIT :page_size;

-- name: insert_comment_like(user_id, comment_id)$
-- Likes a comment once; returns its new like count, or nothing when it was liked already.
WITH liked AS (
    INSERT INTO comment_likes (user_id, comment_id)
    VALUES (:user_id, :comment_id)
    ON CONFLICT DO NOTHING
    RETURNING comment_id
)

UPDATE comments
SET like_count = comments.like_count + 1
FROM liked
WHERE comments.id = liked.comment_id
RETURNING comments.like_count;

-- name: delete_comment_like(user_id, comment_id)$
-- Takes a comment's like back; returns its new like count, or nothing when there was none.
WITH unliked AS (
    DELETE FROM comment_likes
    WHERE user_id = :user_id AND comment_id = :comment_id
    RETURNING comment_id
)

UPDATE comments
SET like_count = comments.like_count - 1
FROM unliked
WHERE comments.id = unliked.comment_id
RETURNING comments.like_count;

-- name: list_liked_comment_ids(user_id, comment_ids)
-- Which of these comments the user likes.
SELECT comment_id
FROM comment_likes
WHERE user_id = :user_id AND comment_id = ANY(:comment_ids);

-- name: purge_removed_comments(removed_before)!
-- Erases the bodies of comments removed before a time for good (they keep their places), as
-- list_purgeable_posts spares what a ban with an end hides.
UPDATE comments AS c
SET body = '', deleted_at = coalesce(c.deleted_at, now())
WHERE
    c.removed_at < :removed_before
    AND c.body <> ''
    AND NOT (c.removed_by_ban AND EXISTS (
        SELECT 1 FROM users AS u
        WHERE u.id = c.author_id AND u.banned_until IS NOT NULL
    ));

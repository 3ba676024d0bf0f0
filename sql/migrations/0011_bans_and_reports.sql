-- Moderation, second step: removed comments, bans, and reports.

-- A removed comment keeps its place in its thread (its replies hang from it) without its body
-- or author, and leaves its post's comment count, until a restore.
ALTER TABLE comments
ADD COLUMN removed_at timestamptz,
ADD COLUMN removed_reason text CHECK (length(removed_reason) <= 500),
ADD CONSTRAINT comments_removed_has_reason CHECK ((removed_at IS NULL) = (removed_reason IS NULL));

-- A ban with `hide_content` removes the user's posts and comments; these flags mark what it
-- removed, which lifting the ban restores (and nothing a moderator removed on its own).
ALTER TABLE posts
ADD COLUMN removed_by_ban boolean NOT NULL DEFAULT FALSE;
ALTER TABLE comments
ADD COLUMN removed_by_ban boolean NOT NULL DEFAULT FALSE;

-- A banned account cannot sign in, and its tokens stop working: banned for `ban_reason`, until
-- `banned_until` (null: for good).
ALTER TABLE users
ADD COLUMN ban_reason text CHECK (length(ban_reason) <= 500),
ADD COLUMN banned_until timestamptz,
ADD CONSTRAINT users_ban_has_reason CHECK (banned_until IS NULL OR ban_reason IS NOT NULL);

-- The bans that end on their own, for the janitor to lift.
CREATE INDEX users_banned_until_idx ON users (banned_until) WHERE banned_until IS NOT NULL;

-- A report on a post or a comment. One resolution resolves every open report on its target
-- at once (they share `resolved_at`); the queue groups them by target.
CREATE TABLE reports (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reporter_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_type text NOT NULL CHECK (target_type IN ('post', 'comment')),
    target_id bigint NOT NULL,
    reason text NOT NULL CHECK (reason IN ('spam', 'nsfw', 'harassment', 'illegal', 'copyright', 'other')),
    note text NOT NULL DEFAULT '' CHECK (length(note) <= 1000),
    created_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolved_by bigint REFERENCES users (id) ON DELETE SET NULL,
    resolution text CHECK (resolution IN ('dismiss', 'remove', 'mark_nsfw', 'ban_author', 'ban_media')),
    CONSTRAINT reports_resolved_has_resolution CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);

-- One open report per reporter and target (a second one is a 409).
CREATE UNIQUE INDEX reports_open_once_idx ON reports (reporter_id, target_type, target_id)
WHERE resolved_at IS NULL;
-- The open queue, oldest first, and the open reports on one target.
CREATE INDEX reports_open_idx ON reports (target_type, target_id, id) WHERE resolved_at IS NULL;
-- The resolved ones, by resolution.
CREATE INDEX reports_resolved_idx ON reports (resolved_at, target_type, target_id) WHERE resolved_at IS NOT NULL;

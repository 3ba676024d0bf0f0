-- Moderation, third step: NSFW posts and blocks. Listings show an NSFW post only to readers
-- who opted in, and no post or comment by an account the reader blocks (sql/queries/feed.sql).

-- Marked by its author at upload, or by a moderator.
ALTER TABLE posts
ADD COLUMN nsfw boolean NOT NULL DEFAULT FALSE;

-- Opted in to NSFW posts in listings (PATCH /users/me).
ALTER TABLE users
ADD COLUMN show_nsfw boolean NOT NULL DEFAULT FALSE;

-- Who blocks whom. The primary key is the lookup every filtered listing makes.
CREATE TABLE blocks (
    blocker_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CONSTRAINT blocks_not_oneself CHECK (blocker_id <> blocked_id)
);

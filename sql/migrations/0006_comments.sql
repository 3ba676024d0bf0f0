-- Comments: threads under posts. A comment names its parent (none: a top-level comment) and
-- its depth; a page of comments with their first replies to depth 3 is one query that walks
-- one level at a time, each level an index range per parent (sql/queries/comments.sql).

CREATE TABLE comments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    post_id bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    parent_id bigint REFERENCES comments (id) ON DELETE CASCADE,
    author_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    depth integer NOT NULL CHECK (depth >= 1),
    body text NOT NULL CHECK (length(body) <= 5000),
    like_count integer NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    reply_count integer NOT NULL DEFAULT 0 CHECK (reply_count >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT comments_depth_matches_parent CHECK ((parent_id IS NULL) = (depth = 1)),
    CONSTRAINT comments_deleted_have_no_body CHECK (deleted_at IS NULL OR body = '')
);

-- The replies to one parent (0: the post itself), in each order a thread is read in.
CREATE INDEX comments_thread_new_idx ON comments (post_id, (coalesce(parent_id, 0)), id DESC);
CREATE INDEX comments_thread_top_idx ON comments (post_id, (coalesce(parent_id, 0)), like_count DESC, id DESC);
-- A user's comments, newest first (and their count on the profile).
CREATE INDEX comments_author_idx ON comments (author_id, id DESC);
CREATE INDEX comments_parent_id_idx ON comments (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE comment_likes (
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    comment_id bigint NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (comment_id, user_id)
);

CREATE INDEX comment_likes_user_id_idx ON comment_likes (user_id);

-- The comments a post shows (deleted ones are not counted), kept by the statements that add
-- and delete them.
ALTER TABLE posts ADD COLUMN comment_count integer NOT NULL DEFAULT 0 CHECK (comment_count >= 0);

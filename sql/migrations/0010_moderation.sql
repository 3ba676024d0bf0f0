-- Moderation: roles, removed posts and the moderation log.

-- Who may moderate: moderators and admins (admins also grant roles). Read with each request's
-- session check, so a change counts from the next request on.
ALTER TABLE users
ADD COLUMN role text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'moderator', 'admin'));

-- A removed post is kept, files and all, so a restore brings it back; only its author and
-- moderators see it meanwhile.
ALTER TABLE posts
ADD COLUMN removed_at timestamptz,
ADD COLUMN removed_reason text CHECK (length(removed_reason) <= 500),
ADD CONSTRAINT posts_removed_has_reason CHECK ((removed_at IS NULL) = (removed_reason IS NULL));

-- Every moderation action, newest last: who (null: the command line), what, on what, why.
CREATE TABLE moderation_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    moderator_id bigint REFERENCES users (id) ON DELETE SET NULL,
    action text NOT NULL,  -- noqa: RF04
    target_type text NOT NULL CHECK (target_type IN ('user', 'post', 'comment', 'media')),
    target_id bigint NOT NULL,
    reason text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    created_at timestamptz NOT NULL DEFAULT now()
);

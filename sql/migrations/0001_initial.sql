-- The initial schema: accounts, media (the durable job), posts, tags and likes.

CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username text NOT NULL CHECK (username ~ '^[A-Za-z0-9_]{3,30}$'),
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Case-insensitive uniqueness; the names are what the API's 409 reports.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- One row per login. Tokens carry the session id; logout revokes the session, which kills the
-- access and refresh tokens issued under it. Lives here, not in Redis, to survive its outage.
CREATE TABLE auth_sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE INDEX auth_sessions_user_id_idx ON auth_sessions (user_id);
CREATE INDEX auth_sessions_expires_at_idx ON auth_sessions (expires_at);

-- A media row is the durable job: content-addressed by the SHA-256 of the original bytes.
CREATE TABLE media (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256 bytea NOT NULL CHECK (length(sha256) = 32),
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    error text,
    attempts integer NOT NULL DEFAULT 0,
    lease_token uuid,
    lease_owner text,
    heartbeat_at timestamptz,
    queued_at timestamptz,
    source_type text NOT NULL,
    source_bytes bigint NOT NULL CHECK (source_bytes >= 0),
    kind text CHECK (kind IN ('image', 'animated', 'video')),
    mime text,
    width integer,
    height integer,
    duration_s double precision,
    blurhash text,
    path text,
    thumbnail_path text,
    variants jsonb NOT NULL DEFAULT '{}',
    request_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CONSTRAINT media_sha256_key UNIQUE (sha256),
    CONSTRAINT media_completed_has_files
        CHECK (status <> 'completed' OR (path IS NOT NULL AND thumbnail_path IS NOT NULL)),
    CONSTRAINT media_failed_has_reason CHECK (status <> 'failed' OR error IS NOT NULL)
);

-- The pipeline's sweeps look for unfinished work only.
CREATE INDEX media_unfinished_idx ON media (status, updated_at)
WHERE status IN ('pending', 'processing');

CREATE TABLE posts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    author_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    media_id bigint NOT NULL REFERENCES media (id),
    caption text NOT NULL DEFAULT '' CHECK (length(caption) <= 2000),
    like_count integer NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    view_count bigint NOT NULL DEFAULT 0 CHECK (view_count >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Keyset pagination of feeds: (created_at, id) newest first, globally and per author.
CREATE INDEX posts_created_at_id_idx ON posts (created_at DESC, id DESC);
CREATE INDEX posts_author_created_at_idx ON posts (author_id, created_at DESC, id DESC);
CREATE INDEX posts_media_id_idx ON posts (media_id);

CREATE TABLE tags (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CHECK (name ~ '^[a-z0-9_]{1,32}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tags_name_key UNIQUE (name)
);

CREATE TABLE post_tags (
    post_id bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    tag_id bigint NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    PRIMARY KEY (post_id, tag_id)
);

CREATE INDEX post_tags_tag_id_post_id_idx ON post_tags (tag_id, post_id);

CREATE TABLE likes (
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    post_id bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, user_id)
);

CREATE INDEX likes_user_id_idx ON likes (user_id, created_at DESC);

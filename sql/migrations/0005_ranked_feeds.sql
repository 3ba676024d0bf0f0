-- Ranked feeds: hot (Lemmy's formula, stored, recomputed by the janitor) and top (by likes).

-- Lemmy's hot rank, with the natural log: ln(max(2, score + 2)) / (hours since posting + 2)^1.8
-- for posts 0-7 days old at `at`, else 0 (older, or dated in the future).
CREATE FUNCTION hot_rank(score integer, published timestamptz, at timestamptz)
RETURNS double precision
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN at >= published AND at - published < interval '168 hours'
            THEN ln(greatest(2, score + 2)::double precision)
            / (extract(EPOCH FROM at - published)::double precision / 3600 + 2) ^ 1.8
        ELSE 0
    END
$$;

-- Which generation of hot ranks is current. Every post has its rank in two slots
-- (slot = generation % 2): the janitor writes generation n + 1 into the slot of generation
-- n - 1, so a walk through hot keeps its generation's order while that generation is current
-- or previous. `previous_kept` is false while that slot is being rewritten.
CREATE TABLE hot_ranking (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    generation bigint NOT NULL,
    ranked_at timestamptz NOT NULL,
    previous_kept boolean NOT NULL
);

INSERT INTO hot_ranking (generation, ranked_at, previous_kept) VALUES (1, now(), false);

-- The hot rank of every post in both slots; 0 until its media completes and after 7 days.
CREATE TABLE post_ranks (
    post_id bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    slot smallint NOT NULL CHECK (slot IN (0, 1)),
    author_id bigint NOT NULL,
    hot double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (post_id, slot)
);

-- The same ranks for each of a post's tags, so that one tag's hot feed is one index range.
CREATE TABLE post_tag_ranks (
    post_id bigint NOT NULL,
    slot smallint NOT NULL,
    tag_id bigint NOT NULL,
    hot double precision NOT NULL,
    PRIMARY KEY (post_id, slot, tag_id),
    FOREIGN KEY (post_id, tag_id) REFERENCES post_tags (post_id, tag_id) ON DELETE CASCADE
);

INSERT INTO post_ranks (post_id, slot, author_id, hot)
SELECT
    p.id,
    s.slot,
    p.author_id,
    CASE WHEN m.status = 'completed' THEN hot_rank(p.like_count, p.created_at, now()) ELSE 0 END AS hot
FROM posts AS p
INNER JOIN media AS m ON p.media_id = m.id
CROSS JOIN (VALUES (0), (1)) AS s (slot);

INSERT INTO post_tag_ranks (post_id, slot, tag_id, hot)
SELECT r.post_id, r.slot, pt.tag_id, r.hot
FROM post_tags AS pt
INNER JOIN post_ranks AS r ON pt.post_id = r.post_id;

-- Hot feeds walk (slot, hot, id) ranges: everyone's, one author's, one tag's. The janitor
-- walks the same index over the posts still ranked (hot > 0).
CREATE INDEX post_ranks_hot_idx ON post_ranks (slot, hot DESC, post_id DESC);
CREATE INDEX post_ranks_author_hot_idx ON post_ranks (slot, author_id, hot DESC, post_id DESC);
CREATE INDEX post_tag_ranks_hot_idx ON post_tag_ranks (slot, tag_id, hot DESC, post_id DESC);

-- Top feeds: most liked first, ties newest first. A tag's top feed walks the tag's own copy
-- of the like count (a like updates it with the post's).
CREATE INDEX posts_top_idx ON posts (like_count DESC, id DESC);
CREATE INDEX posts_author_top_idx ON posts (author_id, like_count DESC, id DESC);

ALTER TABLE post_tags ADD COLUMN like_count integer NOT NULL DEFAULT 0;

UPDATE post_tags AS pt
SET like_count = p.like_count
FROM posts AS p
WHERE pt.post_id = p.id AND p.like_count <> 0;

CREATE INDEX post_tags_top_idx ON post_tags (tag_id, like_count DESC, post_id DESC);

-- A new post gets its rows in both slots: ranked at once when its media already completed
-- (the same bytes uploaded again), else 0 until the finalizer ranks it.
CREATE FUNCTION rank_new_posts() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO post_ranks (post_id, slot, author_id, hot)
    SELECT
        a.id,
        s.slot,
        a.author_id,
        CASE WHEN m.status = 'completed' THEN hot_rank(a.like_count, a.created_at, now()) ELSE 0 END
    FROM added AS a
    INNER JOIN media AS m ON a.media_id = m.id
    CROSS JOIN (VALUES (0), (1)) AS s (slot);
    RETURN NULL;
END
$$;

CREATE TRIGGER posts_ranked AFTER INSERT ON posts
REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION rank_new_posts();

-- A tagging copies the post's ranks.
CREATE FUNCTION rank_new_tags() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO post_tag_ranks (post_id, slot, tag_id, hot)
    SELECT r.post_id, r.slot, a.tag_id, r.hot
    FROM added AS a
    INNER JOIN post_ranks AS r ON a.post_id = r.post_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER post_tags_ranked AFTER INSERT ON post_tags
REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION rank_new_tags();

-- A new rank reaches the post's tags in the same statement.
CREATE FUNCTION copy_ranks_to_tags() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE post_tag_ranks AS t
    SET hot = c.hot
    FROM changed AS c
    WHERE t.post_id = c.post_id AND t.slot = c.slot AND t.hot <> c.hot;
    RETURN NULL;
END
$$;

CREATE TRIGGER post_ranks_copied AFTER UPDATE ON post_ranks
REFERENCING NEW TABLE AS changed
FOR EACH STATEMENT EXECUTE FUNCTION copy_ranks_to_tags();

-- The generation a walk through hot reads: the one its cursor pinned while its ranks are
-- kept, else the current one (0 pins nothing: a first page).
CREATE FUNCTION hot_generation(pinned bigint) RETURNS bigint
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN pinned = h.generation OR (h.previous_kept AND pinned = h.generation - 1) THEN pinned ELSE h.generation END
    FROM hot_ranking AS h
$$;

-- Where a walk resumes: below the cursor's rank in its own generation; in a newer one (its
-- own was rewritten), below the cursor's post as that post ranks now.
CREATE FUNCTION hot_resume(pinned bigint, before_rank double precision, before_id bigint)
RETURNS double precision
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN hot_generation(pinned) = pinned THEN before_rank
        ELSE coalesce(
            (
                SELECT r.hot FROM post_ranks AS r
                WHERE r.post_id = before_id AND r.slot = mod(hot_generation(pinned), 2)
            ),
            before_rank
        )
    END
$$;

-- Ranked feeds: hot (Lemmy's formula, stored, recomputed by the janitor) and top (by likes).

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
    CASE WHEN m.status = 'completed' AND now() - p.created_at < interval '168 hours' THEN  -- hot_rank(), written out:
        ln(greatest(2, p.like_count + 2)::double precision)
        / (extract(EPOCH FROM now() - p.created_at)::double precision / 3600 + 2) ^ 1.8
    ELSE 0 END AS hot
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

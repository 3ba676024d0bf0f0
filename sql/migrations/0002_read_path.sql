-- The read path: tag feeds in post order, tag prefix search.

-- A tag feed walks one tag's posts newest first; the post's creation time is copied here
-- (it never changes) so that the walk is a single index range, at any depth.
ALTER TABLE post_tags ADD COLUMN created_at timestamptz;

UPDATE post_tags AS pt
SET created_at = p.created_at
FROM posts AS p
WHERE pt.post_id = p.id;

ALTER TABLE post_tags ALTER COLUMN created_at SET NOT NULL;

DROP INDEX post_tags_tag_id_post_id_idx;
CREATE INDEX post_tags_tag_feed_idx ON post_tags (tag_id, created_at DESC, post_id DESC);

-- Autocomplete: `name LIKE 'pre%'` as an index range.
CREATE INDEX tags_name_pattern_idx ON tags (name text_pattern_ops);

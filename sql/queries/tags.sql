-- name: list_tags_by_prefix(pattern, max_count)
-- Autocomplete: tags whose name matches a LIKE prefix pattern and that some listed post carries
-- (tags of pending, failed, removed and deleted posts show nowhere), with their listed posts:
-- one range of the index of such tags, however many others there are.
SELECT
    name,
    listed_posts AS post_count
FROM tags
WHERE name LIKE :pattern AND listed_posts > 0
ORDER BY name
LIMIT :max_count;

-- name: list_trending_tags(hours, max_count)
-- The tags with the most listed posts lately.
SELECT
    t.name,
    count(*) AS post_count
FROM posts AS p
INNER JOIN media AS m ON p.media_id = m.id
INNER JOIN post_tags AS pt ON p.id = pt.post_id
INNER JOIN tags AS t ON pt.tag_id = t.id
WHERE
    p.created_at > now() - make_interval(hours => :hours)
    AND m.status = 'completed'
    AND p.removed_at IS NULL
GROUP BY t.name
ORDER BY post_count DESC, t.name ASC
LIMIT :max_count;

-- A comment as the API shows it: its author, and whether it was removed and why.
CREATE VIEW comment_details AS
SELECT
    c.id,
    c.post_id,
    c.parent_id,
    c.depth,
    c.body,
    c.like_count,
    c.reply_count,
    c.created_at,
    c.deleted_at,
    u.id AS author_id,
    u.username AS author_username,
    c.removed_at,
    c.removed_reason
FROM comments AS c
INNER JOIN users AS u ON c.author_id = u.id;

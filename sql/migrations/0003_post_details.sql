-- The post_details view: one definition of "a post as the API shows it". It lives, as every
-- view and function does, in a file of its own (sql/views/post_details.sql).
SELECT 1;

-- What a reader may see, in one place: every listing reads its posts through this function,
-- so a rule added here (a deleted account, say) holds in each of them at once.
--
-- A post is visible when its media is completed and it is not removed (`listed`: a ban that
-- hides an account's content removes its posts), NSFW only with :show_nsfw (the reader opted
-- in), and never by an account :viewer_id blocks (0: nobody's).
--
-- A SQL function returning a set, STABLE, of one SELECT: PostgreSQL inlines it into the query
-- that calls it, so that query's own filters and ORDER BY still reach the indexes on posts
-- and post_tags (tests/test_feeds.py and test_ranked.py read the plans).
CREATE OR REPLACE FUNCTION visible_posts(show_nsfw boolean, viewer_id bigint)
RETURNS SETOF post_details
LANGUAGE sql
STABLE PARALLEL SAFE
AS $$
    SELECT d.*
    FROM post_details AS d
    WHERE
        d.listed
        AND (show_nsfw OR NOT d.nsfw)
        AND d.author_id NOT IN (
            SELECT b.blocked_id FROM blocks AS b
            WHERE b.blocker_id = viewer_id
        )
$$;

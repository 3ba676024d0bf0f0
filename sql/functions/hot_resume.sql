-- Where a walk resumes: below the cursor's rank in its own generation; in a newer one (its
-- own was rewritten), below the cursor's post as that post ranks now.
CREATE OR REPLACE FUNCTION hot_resume(pinned bigint, before_rank double precision, before_id bigint)
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

-- Lemmy's hot rank, with the natural log: ln(max(2, score + 2)) / (hours since posting + 2)^1.8
-- for posts 0-7 days old at `at`, else 0 (older, or dated in the future).
CREATE OR REPLACE FUNCTION hot_rank(score integer, published timestamptz, at timestamptz)
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

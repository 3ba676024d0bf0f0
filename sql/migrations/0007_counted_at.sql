-- counted_at(), the stamp of a counted counter (sql/functions/counted_at.sql).
SELECT 1;

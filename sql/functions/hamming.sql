-- How many bits two 64-bit hashes differ in.
CREATE OR REPLACE FUNCTION hamming(a bigint, b bigint)
RETURNS integer
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT bit_count(CAST(a # b AS bit(64)))::integer
$$;

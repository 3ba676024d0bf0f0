-- The lock of the raw file of these bytes: 'raw!' in the high half, the first four bytes of
-- the hash in the low half (two files that share them share a lock, which costs a wait at most).
CREATE OR REPLACE FUNCTION raw_file_lock(sha256 bytea) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN x'7261772100000000'::bigint | ('x' || encode(substring(sha256 FROM 1 FOR 4), 'hex'))::bit(32)::bigint;

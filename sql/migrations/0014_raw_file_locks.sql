-- Raw uploads and the orphan sweep (issue: a slow commit let the sweep delete the raw file of
-- an upload about to be accepted). An upload stores its raw file before the row that needs
-- it commits, so the file's age says nothing about whether a row will need it. Instead, an
-- upload holds an advisory lock on its file (shared) from before it stores the file until its
-- transaction ends; the sweep deletes a raw file only under the same lock taken exclusively,
-- after it has read that no row needs the file. However slow the commit, whatever the
-- clocks say, a file an upload may still need is never deleted.

-- The lock of the raw file of these bytes: 'raw!' in the high half, the first four bytes of
-- the hash in the low half (two files that share them share a lock, which costs a wait at most).
CREATE FUNCTION raw_file_lock(sha256 bytea) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN x'7261772100000000'::bigint | ('x' || encode(substring(sha256 FROM 1 FOR 4), 'hex'))::bit(32)::bigint;

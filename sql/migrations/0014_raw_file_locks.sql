-- Raw uploads and the orphan sweep (issue: a slow commit let the sweep delete the raw file of
-- an upload about to be accepted). An upload stores its raw file before the row that needs
-- it commits, so the file's age says nothing about whether a row will need it. Instead, an
-- upload holds an advisory lock on its file (shared) from before it stores the file until its
-- transaction ends; the sweep deletes a raw file only under the same lock taken exclusively,
-- after it has read that no row needs the file. However slow the commit, whatever the
-- clocks say, a file an upload may still need is never deleted.
-- The lock's key: raw_file_lock() (sql/functions/raw_file_lock.sql).
SELECT 1;

-- A failed media row says whose fault it was. Rejected: the content itself cannot become media
-- (not media, too large, too long, truncated ...), and the same bytes are refused at once when
-- uploaded again. Not rejected: processing failed (crashes, timeouts, interruptions), and a new
-- upload of the same bytes starts a new set of attempts.
ALTER TABLE media ADD COLUMN rejected boolean NOT NULL DEFAULT false;

UPDATE media
SET rejected = true
WHERE
    status = 'failed'
    AND error NOT LIKE 'processing %'
    AND error NOT IN (
        'the worker processing this file stopped unexpectedly',
        'an internal error interrupted processing',
        'the server could not store the processed files',
        'the uploaded file is missing from storage'
    );

ALTER TABLE media ADD CONSTRAINT media_rejected_is_failed CHECK (NOT rejected OR status = 'failed');

-- Moderation, fourth step: media that may not come back. An upload of the same bytes is
-- refused at once (422); one whose pictures are within the repost radius of a banned one
-- fails when processed, "this media is banned" (memedroid/pipeline/finalizer.py).

-- An entry of the banned list: the bytes, and the media it was banned from (null: a file
-- given on the command line, or a media purged since).
CREATE TABLE banned_media (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256 bytea NOT NULL UNIQUE CHECK (length(sha256) = 32),
    media_id bigint REFERENCES media (id) ON DELETE SET NULL,
    reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Its perceptual hashes, as media_hashes holds them, kept with the entry whatever becomes of
-- the media. The list is short next to the media: it is searched by a plain scan.
CREATE TABLE banned_hashes (
    banned_id bigint NOT NULL REFERENCES banned_media (id) ON DELETE CASCADE,
    frame smallint NOT NULL CHECK (frame >= 0),
    trimmed boolean NOT NULL,
    phash bigint NOT NULL,
    dhash bigint NOT NULL,
    PRIMARY KEY (banned_id, frame, trimmed)
);

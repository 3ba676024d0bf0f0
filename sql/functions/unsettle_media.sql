-- Note a change (a second one while the files move waits for the move to end, and is noted
-- anew: the mover's view of the posts may predate it).
CREATE OR REPLACE FUNCTION unsettle_media(media bigint) RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO unsettled_media AS u (media_id) VALUES (media)
    ON CONFLICT (media_id) DO UPDATE SET changes = u.changes + 1
$$;

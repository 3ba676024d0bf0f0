-- Whether an account's ban is in force now.
CREATE OR REPLACE FUNCTION banned(u users)
RETURNS boolean
LANGUAGE sql
STABLE
AS $$
    SELECT u.ban_reason IS NOT NULL AND (u.banned_until IS NULL OR u.banned_until > now())
$$;

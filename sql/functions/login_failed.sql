-- A failed login of p_username: counts it and, from p_free failures in a row
-- on, blocks the name for 1 s, then 2, 4, ... at most p_max. Returns the
-- seconds of the block, 0 when none.
CREATE OR REPLACE FUNCTION mjs.login_failed(p_username text, p_free integer, p_max interval) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n     integer;
    secs  integer := 0;
BEGIN
    INSERT INTO mjs.login_failures AS f (username, failures, last_failed_at)
        VALUES (lower(p_username), 1, now())
    ON CONFLICT (username) DO UPDATE
        SET failures = CASE WHEN f.last_failed_at < now() - interval '1 hour' THEN 1 ELSE f.failures + 1 END,
            last_failed_at = now()
    RETURNING f.failures INTO n;
    IF n >= p_free THEN
        secs := least(greatest(1, extract(epoch FROM p_max)::integer),
                      power(2, least(n - p_free, 30))::integer);
        UPDATE mjs.login_failures SET blocked_until = now() + make_interval(secs => secs)
            WHERE username = lower(p_username);
    END IF;
    RETURN secs;
END
$$;
COMMENT ON FUNCTION mjs.login_failed(text, integer, interval) IS 'Counts a failed login of a username (known or not) and blocks it from p_free failures on; returns the seconds it is now blocked (0: not).';

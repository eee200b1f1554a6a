-- 011_login_throttle: failed logins slow down per username (issue 13).
--
-- Each login that fails counts against the username as typed (lower case),
-- whether such a user exists or not, so the answers and their timing tell
-- nothing about which names exist. Past login_failures_free failures in a row
-- (mjs.conf), the name is blocked for 1, 2, 4, ... seconds up to
-- login_block_max; a login in that time answers 429 with Retry-After before any
-- password is hashed. A success deletes the row; so does a failure an hour
-- after the last one (counted from 1 again), and the workers' housekeeping
-- deletes rows a day old. Addresses are throttled by nginx (limit_req).

CREATE TABLE mjs.login_failures (
    username        text PRIMARY KEY,       -- lower(username) as typed
    failures        integer NOT NULL,
    last_failed_at  timestamptz NOT NULL,
    blocked_until   timestamptz
);
CREATE INDEX login_failures_last ON mjs.login_failures (last_failed_at);
COMMENT ON TABLE mjs.login_failures IS 'Failed logins in a row per username as typed (known or not); a block makes the next logins answer 429 until blocked_until.';

-- A failed login of p_username: counts it and, from p_free failures in a row
-- on, blocks the name for 1 s, then 2, 4, ... at most p_max. Returns the
-- seconds of the block, 0 when none.
CREATE FUNCTION mjs.login_failed(p_username text, p_free integer, p_max interval) RETURNS integer
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

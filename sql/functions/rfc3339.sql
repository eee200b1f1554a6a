-- Times leave the database as RFC 3339 UTC with microseconds, e.g. 2026-11-25T05:07:49.123456Z.
-- STABLE, as to_char() is: PostgreSQL inlines a function only when it is
-- declared no stricter than its body, and a call that is not inlined costs
-- three times the formatting (1.4 µs against 0.4; two per row of every list).
CREATE OR REPLACE FUNCTION mjs.rfc3339(t timestamptz) RETURNS text
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
  SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
COMMENT ON FUNCTION mjs.rfc3339(timestamptz) IS 'Formats a timestamp as the API does: RFC 3339, UTC, microseconds.';

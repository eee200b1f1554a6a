CREATE OR REPLACE FUNCTION mjs.user_json(u mjs.users) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT row_to_json(r) FROM (SELECT u.id, u.username, mjs.rfc3339(u.created_at) AS created_at) r
$$;
COMMENT ON FUNCTION mjs.user_json(mjs.users) IS 'The API''s JSON for a user (never the hash).';

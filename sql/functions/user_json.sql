CREATE OR REPLACE FUNCTION mjs.user_json(u mjs.users) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT row_to_json(ROW(u.id, u.username, mjs.rfc3339(u.created_at))::mjs.user_out)
$$;
COMMENT ON FUNCTION mjs.user_json(mjs.users) IS 'The API''s JSON for a user (never the hash).';

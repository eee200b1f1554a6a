CREATE OR REPLACE FUNCTION mjs.conversation_json(c mjs.conversations) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT row_to_json(ROW(c.id, c.title, mjs.rfc3339(c.created_at),
                         mjs.rfc3339(c.updated_at), c.system_prompt, c.model)::mjs.conversation_out)
$$;
COMMENT ON FUNCTION mjs.conversation_json(mjs.conversations) IS 'The API''s JSON for a conversation (REST body and event data).';

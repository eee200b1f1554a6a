CREATE OR REPLACE FUNCTION mjs.message_json(m mjs.messages) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT row_to_json(ROW(m.id, m.conversation_id, m.role, mjs.message_text(m), m.status, m.error, m.model,
                         mjs.rfc3339(m.created_at), mjs.rfc3339(m.updated_at), mjs.message_reasoning(m),
                         m.usage, m.finish_reason)::mjs.message_out)
$$;
COMMENT ON FUNCTION mjs.message_json(mjs.messages) IS 'The API''s JSON for a message (REST body and event data).';

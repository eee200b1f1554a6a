CREATE OR REPLACE FUNCTION mjs.message_reasoning(m mjs.messages) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN m.status = 'streaming'
              THEN m.reasoning || coalesce((SELECT string_agg(c.text, '' ORDER BY c."offset")
                                            FROM mjs.message_chunks c WHERE c.message_id = m.id AND c.part = 1), '')
              ELSE m.reasoning END
$$;
COMMENT ON FUNCTION mjs.message_reasoning(mjs.messages) IS 'A message''s reasoning: reasoning plus the reasoning chunks (part 1) of a streaming message.';

CREATE OR REPLACE FUNCTION mjs.message_reasoning_chars(m mjs.messages) RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN m.status = 'streaming'
              THEN coalesce((SELECT c."offset" + char_length(c.text) FROM mjs.message_chunks c
                             WHERE c.message_id = m.id AND c.part = 1 ORDER BY c."offset" DESC LIMIT 1),
                            char_length(m.reasoning))
              ELSE char_length(m.reasoning) END
$$;
COMMENT ON FUNCTION mjs.message_reasoning_chars(mjs.messages) IS 'Length in characters of mjs.message_reasoning(m), from the last reasoning chunk when there is one.';

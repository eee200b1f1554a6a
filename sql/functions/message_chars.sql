CREATE OR REPLACE FUNCTION mjs.message_chars(m mjs.messages) RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN m.status = 'streaming'
              THEN coalesce((SELECT c."offset" + char_length(c.text) FROM mjs.message_chunks c
                             WHERE c.message_id = m.id AND c.part = 0 ORDER BY c."offset" DESC LIMIT 1),
                            char_length(m.content))
              ELSE char_length(m.content) END
$$;
COMMENT ON FUNCTION mjs.message_chars(mjs.messages) IS 'Length in characters of mjs.message_text(m), from the last chunk when there is one.';

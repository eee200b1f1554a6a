CREATE OR REPLACE FUNCTION mjs.message_text(m mjs.messages) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN m.status = 'streaming'
              THEN m.content || coalesce((SELECT string_agg(c.text, '' ORDER BY c."offset")
                                          FROM mjs.message_chunks c WHERE c.message_id = m.id AND c.part = 0), '')
              ELSE m.content END
$$;
COMMENT ON FUNCTION mjs.message_text(mjs.messages) IS 'A message''s text: content plus the chunks of a streaming message.';

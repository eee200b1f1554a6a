-- Inlined where it is called (no subquery: mjs.chunks_text()), and the
-- chunks are read only for a message that is streaming.
CREATE OR REPLACE FUNCTION mjs.message_text(m mjs.messages) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN m.status = 'streaming' THEN m.content || mjs.chunks_text(m.id, 0::smallint)
              ELSE m.content END
$$;
COMMENT ON FUNCTION mjs.message_text(mjs.messages) IS 'A message''s text: content plus the chunks of a streaming message.';

-- Inlined where it is called, as mjs.message_text() is.
CREATE OR REPLACE FUNCTION mjs.message_reasoning(m mjs.messages) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN m.status = 'streaming' THEN m.reasoning || mjs.chunks_text(m.id, 1::smallint)
              ELSE m.reasoning END
$$;
COMMENT ON FUNCTION mjs.message_reasoning(mjs.messages) IS 'A message''s reasoning: reasoning plus the reasoning chunks (part 1) of a streaming message.';

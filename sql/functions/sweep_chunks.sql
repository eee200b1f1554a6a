CREATE OR REPLACE FUNCTION mjs.sweep_chunks() RETURNS bigint
LANGUAGE sql AS $$
  WITH d AS (
      DELETE FROM mjs.message_chunks c
      WHERE NOT EXISTS (SELECT 1 FROM mjs.messages m WHERE m.id = c.message_id AND m.status = 'streaming')
      RETURNING 1)
  SELECT count(*) FROM d
$$;
COMMENT ON FUNCTION mjs.sweep_chunks() IS 'Deletes the chunks of messages that are no longer streaming (left by a worker that stopped before deleting them); returns how many. The worker runs it when it connects.';

CREATE OR REPLACE FUNCTION mjs.drop_chunks(p_ids uuid[]) RETURNS bigint
LANGUAGE sql AS $$
  WITH d AS (
      DELETE FROM mjs.message_chunks c
      WHERE c.message_id = ANY (ARRAY(
          SELECT d.id FROM unnest(p_ids) d(id) LEFT JOIN mjs.messages m ON m.id = d.id
          WHERE m.status IS DISTINCT FROM 'streaming'))
      RETURNING 1)
  SELECT count(*) FROM d
$$;
COMMENT ON FUNCTION mjs.drop_chunks(uuid[]) IS 'Deletes the chunks of the given messages unless one is (impossibly) still streaming; returns how many. The worker calls it with the messages whose final status it wrote.';

-- The notification of one event on channel mjs_events, which mjs-api parses
-- (src/common/events.c):
--   "<user id> <seq> <type> <data>"
-- or, when the whole would not fit in 7,900 bytes (NOTIFY's limit is 8,000),
--   "<user id> <seq> <type> "
-- and the responders read the data from mjs.events. This is the only place
-- the format and the limit are written; mjs.emit_batch is its only caller.
-- One expression, so PostgreSQL inlines it (STABLE, not IMMUTABLE: the casts
-- to text are stable, and an IMMUTABLE function of them is not inlined).
CREATE OR REPLACE FUNCTION mjs.event_payload(p_user uuid, p_seq bigint, p_type text, p_data json) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN octet_length(p_user::text || ' ' || p_seq || ' ' || p_type || ' ') + octet_length(p_data::text) < 7900
              THEN p_user::text || ' ' || p_seq || ' ' || p_type || ' ' || p_data::text
              ELSE p_user::text || ' ' || p_seq || ' ' || p_type || ' ' END
$$;
COMMENT ON FUNCTION mjs.event_payload(uuid, bigint, text, json) IS 'The NOTIFY payload of an event on mjs_events: "user seq type data", or without the data past 7,900 bytes (responders then read mjs.events).';

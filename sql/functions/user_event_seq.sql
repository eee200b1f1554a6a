-- The user's event seq as seen by the calling transaction (its own events
-- included). Called under the user's row lock it is the seq of the state the
-- transaction sees.
CREATE OR REPLACE FUNCTION mjs.user_event_seq(p_user uuid) RETURNS bigint
LANGUAGE sql AS $$
  SELECT event_seq FROM mjs.users WHERE id = p_user
$$;
COMMENT ON FUNCTION mjs.user_event_seq(uuid) IS 'The user''s last event seq as the calling transaction sees it; the Mjs-Event-Seq of a write''s answer.';

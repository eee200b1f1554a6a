-- Stop: a queued job is stopped right here; a running one is flagged and its
-- worker is told on mjs_stop (payload: the message id).
-- outcome: not_found | finished (nothing to stop) | stopped | stopping.
CREATE OR REPLACE FUNCTION mjs.stop_message(p_user uuid, p_message uuid, OUT outcome text, OUT message json,
                                 OUT event_seq bigint)
LANGUAGE plpgsql AS $$
DECLARE
    m mjs.messages;
    g mjs.generations;
BEGIN
    PERFORM mjs.lock_user(p_user);
    SELECT * INTO m FROM mjs.messages WHERE id = p_message AND user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    SELECT * INTO g FROM mjs.generations WHERE message_id = p_message FOR UPDATE;
    IF NOT FOUND OR g.state = 'done' OR m.status NOT IN ('created', 'pending', 'streaming') THEN
        outcome := 'finished';
    ELSIF g.state = 'queued' THEN
        UPDATE mjs.generations SET state = 'done', stop_requested = true, finished_at = now()
            WHERE message_id = p_message;
        UPDATE mjs.messages SET status = 'stopped', updated_at = now()
            WHERE id = p_message RETURNING * INTO m;
        PERFORM mjs.emit(p_user, 'message.updated', mjs.message_json(m));
        outcome := 'stopped';
    ELSE
        UPDATE mjs.generations SET stop_requested = true WHERE message_id = p_message;
        PERFORM pg_notify('mjs_stop', p_message::text);
        outcome := 'stopping';
    END IF;
    message := mjs.message_json(m);
    event_seq := mjs.user_event_seq(p_user);
END
$$;
COMMENT ON FUNCTION mjs.stop_message(uuid, uuid) IS 'POST /api/messages/{id}/stop: stops a queued job at once, or flags a running one and notifies mjs_stop; event_seq is the user''s seq of the answer.';

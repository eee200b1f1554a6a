-- POST /api/conversations/{id}/messages: the user message, the assistant
-- message (created) and its job, with their events, then a wake-up for the
-- workers; event_seq is the seq of the last event. The count of the user's
-- open replies is taken under the user's lock, so two requests at once cannot
-- both slip under the cap: with p_max_open queued or running already,
-- open_replies is set, body is NULL and nothing changes. body is NULL without
-- open_replies when the conversation is not the user's. The reply's model:
-- p_model, else the conversation's, else p_default (the server's).
CREATE OR REPLACE FUNCTION mjs.send_message(p_user uuid, p_conversation uuid, p_content text, p_model text,
                                 p_default text, p_max_open integer,
                                 OUT body json, OUT event_seq bigint, OUT open_replies integer)
LANGUAGE plpgsql AS $$
DECLARE
    c  mjs.conversations;
    um mjs.messages;
    am mjs.messages;
    n  integer;
    t  timestamptz := clock_timestamp();
    v_model text;
BEGIN
    PERFORM mjs.lock_user(p_user);
    PERFORM 1 FROM mjs.conversations WHERE id = p_conversation AND user_id = p_user;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT count(*) INTO n FROM mjs.generations WHERE user_id = p_user AND state <> 'done';
    IF n >= p_max_open THEN
        open_replies := n;
        RETURN;
    END IF;
    UPDATE mjs.conversations SET updated_at = t
        WHERE id = p_conversation AND user_id = p_user RETURNING * INTO c;
    v_model := coalesce(p_model, c.model, p_default);
    INSERT INTO mjs.messages (conversation_id, user_id, role, content, status, created_at, updated_at)
        VALUES (c.id, p_user, 'user', p_content, 'completed', t, t) RETURNING * INTO um;
    INSERT INTO mjs.messages (conversation_id, user_id, role, content, status, model, created_at, updated_at)
        VALUES (c.id, p_user, 'assistant', '', 'created', v_model, t + interval '1 microsecond',
                t + interval '1 microsecond') RETURNING * INTO am;
    INSERT INTO mjs.generations (message_id, user_id, model) VALUES (am.id, p_user, v_model);
    PERFORM mjs.emit(p_user, 'message.created', mjs.message_json(um));
    PERFORM mjs.emit(p_user, 'message.created', mjs.message_json(am));
    event_seq := mjs.emit(p_user, 'conversation.updated', mjs.conversation_json(c));
    PERFORM pg_notify('mjs_work', '');
    body := (SELECT row_to_json(r) FROM (SELECT mjs.message_json(um) AS user_message,
                                                mjs.message_json(am) AS assistant_message) r);
END
$$;
COMMENT ON FUNCTION mjs.send_message(uuid, uuid, text, text, text, integer) IS 'POST /api/conversations/{id}/messages in one transaction: both messages, the job, the events, and a wake-up for the workers; event_seq is the seq of its last event. Refused (open_replies set, nothing changed) when the user has p_max_open replies queued or running. The model: p_model, else the conversation''s, else p_default.';

-- The signature of the release before (the model always given), kept while its
-- responders may still call it (sql/README.md).
CREATE OR REPLACE FUNCTION mjs.send_message(p_user uuid, p_conversation uuid, p_content text, p_model text,
                                 p_max_open integer,
                                 OUT body json, OUT event_seq bigint, OUT open_replies integer)
LANGUAGE sql AS $$
  SELECT * FROM mjs.send_message(p_user, p_conversation, p_content, p_model, p_model, p_max_open)
$$;
COMMENT ON FUNCTION mjs.send_message(uuid, uuid, text, text, integer) IS 'The 5-argument send_message of the release before: the 6-argument one with the model as its own default.';

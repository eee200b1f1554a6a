-- 002_generations: the queue of AI replies and the functions that move a message
-- through created -> pending -> streaming -> completed | stopped | failed.
-- Every function changes rows and emits the matching events in the caller's transaction.

CREATE TABLE mjs.generations (
    message_id     uuid PRIMARY KEY REFERENCES mjs.messages (id) ON DELETE CASCADE,
    user_id        uuid NOT NULL REFERENCES mjs.users (id) ON DELETE CASCADE,
    model          text NOT NULL,
    state          text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done')),
    worker         text,
    lease_until    timestamptz,
    attempts       integer NOT NULL DEFAULT 0,
    stop_requested boolean NOT NULL DEFAULT false,
    tokens         integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    first_token_at timestamptz,
    last_flush_at  timestamptz,
    finished_at    timestamptz
);
CREATE INDEX generations_open ON mjs.generations (created_at) WHERE state <> 'done';
COMMENT ON TABLE mjs.generations IS 'One row per assistant reply: the job a worker claims, leases and runs. state done rows are kept for mjsctl gen list.';
COMMENT ON COLUMN mjs.generations.state IS 'queued: waiting for a worker; running: a worker holds the lease; done: the message reached a final status.';
COMMENT ON COLUMN mjs.generations.worker IS 'Name of the worker (host:pid) holding or last holding the lease.';
COMMENT ON COLUMN mjs.generations.lease_until IS 'The worker renews this while it runs the job; once past, another worker takes the job over.';
COMMENT ON COLUMN mjs.generations.stop_requested IS 'Set by POST /api/messages/{id}/stop; the worker aborts and marks the message stopped.';
COMMENT ON COLUMN mjs.generations.tokens IS 'Content chunks received from the upstream so far.';

-- Sends a user message: the user message, the assistant message (created) and its
-- job, with their events, then wakes the workers. Returns NULL when the
-- conversation is not the user's.
CREATE FUNCTION mjs.send_message(p_user uuid, p_conversation uuid, p_content text, p_model text)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    c  mjs.conversations;
    um mjs.messages;
    am mjs.messages;
    t  timestamptz := clock_timestamp();
BEGIN
    PERFORM mjs.lock_user(p_user);
    UPDATE mjs.conversations SET updated_at = t
        WHERE id = p_conversation AND user_id = p_user RETURNING * INTO c;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO mjs.messages (conversation_id, user_id, role, content, status, created_at, updated_at)
        VALUES (c.id, p_user, 'user', p_content, 'completed', t, t) RETURNING * INTO um;
    INSERT INTO mjs.messages (conversation_id, user_id, role, content, status, model, created_at, updated_at)
        VALUES (c.id, p_user, 'assistant', '', 'created', p_model, t + interval '1 microsecond',
                t + interval '1 microsecond') RETURNING * INTO am;
    INSERT INTO mjs.generations (message_id, user_id, model) VALUES (am.id, p_user, p_model);
    PERFORM mjs.emit(p_user, 'message.created', mjs.message_json(um));
    PERFORM mjs.emit(p_user, 'message.created', mjs.message_json(am));
    PERFORM mjs.emit(p_user, 'conversation.updated', mjs.conversation_json(c));
    PERFORM pg_notify('mjs_work', '');
    RETURN (SELECT row_to_json(r) FROM (SELECT mjs.message_json(um) AS user_message,
                                               mjs.message_json(am) AS assistant_message) r);
END
$$;
COMMENT ON FUNCTION mjs.send_message(uuid, uuid, text, text) IS 'POST /api/conversations/{id}/messages in one transaction: both messages, the job, the events, and a wake-up for the workers.';

-- Stop: a queued job is stopped right here; a running one is flagged and its
-- worker is told on mjs_stop (payload: the message id).
-- outcome: not_found | finished (nothing to stop) | stopped | stopping.
CREATE FUNCTION mjs.stop_message(p_user uuid, p_message uuid, OUT outcome text, OUT message json)
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
        message := mjs.message_json(m);
        RETURN;
    END IF;
    IF g.state = 'queued' THEN
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
END
$$;
COMMENT ON FUNCTION mjs.stop_message(uuid, uuid) IS 'POST /api/messages/{id}/stop: stops a queued job at once, or flags a running one and notifies mjs_stop.';

-- Claims up to p_limit jobs for worker p_worker: queued ones, and running ones
-- whose lease has expired (their worker died). Only the job rows are touched, so
-- claiming never waits on a user's lock; the worker moves the message itself in
-- its next flush. Returns what the worker needs to decide and to start.
CREATE FUNCTION mjs.claim_generations(p_worker text, p_limit integer, p_lease interval)
RETURNS TABLE (message_id uuid, user_id uuid, conversation_id uuid, model text, attempts integer,
               status text, content_chars integer, stop_requested boolean, recovered boolean)
LANGUAGE sql AS $$
  WITH c AS (
      SELECT g.message_id, g.state = 'running' AS recovered FROM mjs.generations g
      WHERE g.state = 'queued' OR (g.state = 'running' AND g.lease_until < now())
      ORDER BY g.created_at LIMIT p_limit FOR UPDATE SKIP LOCKED),
  u AS (
      UPDATE mjs.generations g SET state = 'running', worker = p_worker, lease_until = now() + p_lease,
             attempts = g.attempts + 1, started_at = coalesce(g.started_at, now())
      FROM c WHERE g.message_id = c.message_id RETURNING g.*, c.recovered)
  SELECT u.message_id, u.user_id, m.conversation_id, u.model, u.attempts, m.status,
         char_length(m.content), u.stop_requested, u.recovered
  FROM u JOIN mjs.messages m ON m.id = u.message_id
$$;
COMMENT ON FUNCTION mjs.claim_generations(text, integer, interval) IS 'Worker side: lease queued or abandoned jobs (FOR UPDATE SKIP LOCKED).';

-- One flush of a worker tick: for every job in p (a JSON array of
-- {"id", "offset", "text", "status", "error", "tokens"}), append text (message.delta),
-- move the status (message.updated), and finish the job on a final status.
-- Text is appended only when the content is still offset characters long, so a
-- flush retried after a lost reply never doubles text.
-- Users are locked in id order, each before its rows. Returns the ids whose
-- message no longer exists (deleted): the worker drops those jobs.
CREATE FUNCTION mjs.flush_generations(p json) RETURNS SETOF uuid
LANGUAGE plpgsql AS $$
DECLARE
    r      record;
    m      mjs.messages;
    v_off  integer;
BEGIN
    FOR r IN
        SELECT x.id, x."offset", x.text, x.status, x.error, x.tokens, mm.user_id
        FROM json_to_recordset(p) AS x(id uuid, "offset" integer, text text, status text, error text,
                                       tokens integer)
        LEFT JOIN mjs.messages mm ON mm.id = x.id
        ORDER BY mm.user_id, x.id
    LOOP
        IF r.user_id IS NULL THEN
            RETURN NEXT r.id;
            CONTINUE;
        END IF;
        PERFORM mjs.lock_user(r.user_id);
        SELECT * INTO m FROM mjs.messages WHERE id = r.id FOR UPDATE;
        IF NOT FOUND THEN
            RETURN NEXT r.id;
            CONTINUE;
        END IF;
        -- the status moves only forward: created, pending, streaming, then a final one
        IF r.status = 'pending' AND m.status = 'created' THEN
            UPDATE mjs.messages SET status = 'pending', updated_at = now() WHERE id = m.id RETURNING * INTO m;
            PERFORM mjs.emit(m.user_id, 'message.updated', mjs.message_json(m));
        END IF;
        IF coalesce(r.text, '') <> '' AND char_length(m.content) = r."offset" THEN
            IF m.status IN ('created', 'pending') THEN
                UPDATE mjs.messages SET status = 'streaming', updated_at = now() WHERE id = m.id RETURNING * INTO m;
                PERFORM mjs.emit(m.user_id, 'message.updated', mjs.message_json(m));
                UPDATE mjs.generations SET first_token_at = now() WHERE message_id = m.id;
            END IF;
            v_off := char_length(m.content);
            UPDATE mjs.messages SET content = content || r.text, updated_at = now() WHERE id = m.id RETURNING * INTO m;
            PERFORM mjs.emit(m.user_id, 'message.delta',
                (SELECT row_to_json(d) FROM (SELECT m.id AS message_id, m.conversation_id,
                                                    v_off AS "offset", r.text AS text) d));
        END IF;
        IF r.status IN ('completed', 'stopped', 'failed') AND m.status IN ('created', 'pending', 'streaming') THEN
            UPDATE mjs.messages SET status = r.status, error = r.error, updated_at = now()
                WHERE id = m.id RETURNING * INTO m;
            PERFORM mjs.emit(m.user_id, 'message.updated', mjs.message_json(m));
        END IF;
        UPDATE mjs.generations SET tokens = coalesce(r.tokens, tokens), last_flush_at = now(),
               state = CASE WHEN m.status IN ('completed', 'stopped', 'failed') THEN 'done' ELSE state END,
               finished_at = CASE WHEN m.status IN ('completed', 'stopped', 'failed') THEN now() END
            WHERE message_id = m.id;
    END LOOP;
END
$$;
COMMENT ON FUNCTION mjs.flush_generations(json) IS 'Worker side: one transaction per tick carrying every job with new text or a new status.';

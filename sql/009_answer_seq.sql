-- 009_answer_seq: every REST answer says which point of the user's event stream
-- it reflects (the Mjs-Event-Seq header, mjs-events(7)).
--
-- A tab merges REST answers with the live stream by seq: an object it learned
-- from an event newer than an answer is kept, one deleted after the answer stays
-- deleted. Reads take the seq from mjs.users.event_seq in the statement that
-- reads the data (one snapshot: the events with seq <= event_seq are exactly the
-- committed ones that snapshot sees, because mjs.emit bumps event_seq in the
-- transaction of the change). Writes answer with the seq of their last event:
-- they hold the user's row lock to commit, so nothing else of the user's
-- changes between their reads and that seq. A write that changed nothing (stop
-- of a running reply, a blur that was already set) answers with the user's seq
-- read under the same lock.
--
-- The list reads are plpgsql functions: one statement, so one snapshot, whose
-- plan is cached on the connection. The seq costs a join with the user's row,
-- and planning that join on every request made a list read ~0.1 ms slower
-- (bench/run rest); a cached plan makes it faster than before instead. The
-- first page and the next ones are two statements, each with its own cached
-- plan: a generic plan of "cursor IS NULL OR row < cursor" could not use the
-- cursor as an index condition and would read every row before it.
--
-- The four write functions below return the seq beside their object. Their
-- result types change, so they are dropped and created again; the bodies are
-- the ones of 002 and 004 with the seq added.

DROP FUNCTION mjs.send_message(uuid, uuid, text, text);
DROP FUNCTION mjs.stop_message(uuid, uuid);
DROP FUNCTION mjs.create_task(uuid, text, text, jsonb);
DROP FUNCTION mjs.change_task(uuid, uuid, text, boolean);

-- GET /api/conversations: one page, newest updated first, after the cursor
-- (p_after_usec, p_after_id; NULL on the first page), p_limit rows (the caller
-- asks one more than it shows, to learn whether a page follows). Rows of
-- (the user's event seq, conversation JSON, the row's cursor); a page with no
-- conversation is one row with NULLs beside the seq; no row when there is no
-- such user.
CREATE FUNCTION mjs.conversation_page(p_user uuid, p_after_usec bigint, p_after_id uuid, p_limit integer)
RETURNS TABLE (r_seq bigint, r_obj text, r_cursor text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_after_usec IS NULL THEN
        RETURN QUERY
        SELECT u.event_seq, p.obj, p.cur FROM mjs.users u LEFT JOIN (
            SELECT mjs.conversation_json(c)::text AS obj, c.updated_at, c.id,
                   (extract(epoch FROM c.updated_at) * 1000000)::bigint || '_' || c.id AS cur
            FROM mjs.conversations c WHERE c.user_id = p_user
            ORDER BY c.updated_at DESC, c.id DESC LIMIT p_limit) p ON true
        WHERE u.id = p_user ORDER BY p.updated_at DESC, p.id DESC;
    ELSE
        RETURN QUERY
        SELECT u.event_seq, p.obj, p.cur FROM mjs.users u LEFT JOIN (
            SELECT mjs.conversation_json(c)::text AS obj, c.updated_at, c.id,
                   (extract(epoch FROM c.updated_at) * 1000000)::bigint || '_' || c.id AS cur
            FROM mjs.conversations c WHERE c.user_id = p_user
              AND (c.updated_at, c.id) < (timestamptz 'epoch' + p_after_usec * interval '1 microsecond', p_after_id)
            ORDER BY c.updated_at DESC, c.id DESC LIMIT p_limit) p ON true
        WHERE u.id = p_user ORDER BY p.updated_at DESC, p.id DESC;
    END IF;
END
$$;
COMMENT ON FUNCTION mjs.conversation_page(uuid, bigint, uuid, integer) IS 'GET /api/conversations: one page and the user''s event seq it reflects, in one snapshot.';

-- GET /api/tasks: the same for tasks, newest created first, the trash
-- (p_deleted) or the rest.
CREATE FUNCTION mjs.task_page(p_user uuid, p_deleted boolean, p_after_usec bigint, p_after_id uuid,
                              p_limit integer)
RETURNS TABLE (r_seq bigint, r_obj text, r_cursor text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_after_usec IS NULL THEN
        RETURN QUERY
        SELECT u.event_seq, p.obj, p.cur FROM mjs.users u LEFT JOIN (
            SELECT mjs.task_json(t)::text AS obj, t.created_at, t.id,
                   (extract(epoch FROM t.created_at) * 1000000)::bigint || '_' || t.id AS cur
            FROM mjs.tasks t WHERE t.user_id = p_user AND (t.deleted_at IS NOT NULL) = p_deleted
            ORDER BY t.created_at DESC, t.id DESC LIMIT p_limit) p ON true
        WHERE u.id = p_user ORDER BY p.created_at DESC, p.id DESC;
    ELSE
        RETURN QUERY
        SELECT u.event_seq, p.obj, p.cur FROM mjs.users u LEFT JOIN (
            SELECT mjs.task_json(t)::text AS obj, t.created_at, t.id,
                   (extract(epoch FROM t.created_at) * 1000000)::bigint || '_' || t.id AS cur
            FROM mjs.tasks t WHERE t.user_id = p_user AND (t.deleted_at IS NOT NULL) = p_deleted
              AND (t.created_at, t.id) < (timestamptz 'epoch' + p_after_usec * interval '1 microsecond', p_after_id)
            ORDER BY t.created_at DESC, t.id DESC LIMIT p_limit) p ON true
        WHERE u.id = p_user ORDER BY p.created_at DESC, p.id DESC;
    END IF;
END
$$;
COMMENT ON FUNCTION mjs.task_page(uuid, boolean, bigint, uuid, integer) IS 'GET /api/tasks: one page and the user''s event seq it reflects, in one snapshot.';

-- GET /api/conversations/{id}/messages: whether the conversation is the
-- user's, its messages oldest first, and the user's event seq, in one
-- snapshot. One row with a NULL message when it has none; no row when there
-- is no such user.
CREATE FUNCTION mjs.message_list(p_user uuid, p_conversation uuid)
RETURNS TABLE (r_seq bigint, r_found boolean, r_obj text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT u.event_seq, c.id IS NOT NULL, p.obj FROM mjs.users u
    LEFT JOIN mjs.conversations c ON c.id = p_conversation AND c.user_id = p_user
    LEFT JOIN (SELECT mjs.message_json(m)::text AS obj, m.created_at, m.id FROM mjs.messages m
               WHERE m.conversation_id = p_conversation AND m.user_id = p_user) p ON c.id IS NOT NULL
    WHERE u.id = p_user ORDER BY p.created_at, p.id;
END
$$;
COMMENT ON FUNCTION mjs.message_list(uuid, uuid) IS 'GET /api/conversations/{id}/messages: the messages and the user''s event seq they reflect, in one snapshot.';

-- The user's event seq as seen by the calling transaction (its own events
-- included). Called under the user's row lock it is the seq of the state the
-- transaction sees.
CREATE FUNCTION mjs.user_event_seq(p_user uuid) RETURNS bigint
LANGUAGE sql AS $$
  SELECT event_seq FROM mjs.users WHERE id = p_user
$$;
COMMENT ON FUNCTION mjs.user_event_seq(uuid) IS 'The user''s last event seq as the calling transaction sees it; the Mjs-Event-Seq of a write''s answer.';

-- Sends a user message: the user message, the assistant message (created) and its
-- job, with their events, then wakes the workers. body is NULL when the
-- conversation is not the user's.
CREATE FUNCTION mjs.send_message(p_user uuid, p_conversation uuid, p_content text, p_model text,
                                 OUT body json, OUT event_seq bigint)
LANGUAGE plpgsql AS $$
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
        RETURN;
    END IF;
    INSERT INTO mjs.messages (conversation_id, user_id, role, content, status, created_at, updated_at)
        VALUES (c.id, p_user, 'user', p_content, 'completed', t, t) RETURNING * INTO um;
    INSERT INTO mjs.messages (conversation_id, user_id, role, content, status, model, created_at, updated_at)
        VALUES (c.id, p_user, 'assistant', '', 'created', p_model, t + interval '1 microsecond',
                t + interval '1 microsecond') RETURNING * INTO am;
    INSERT INTO mjs.generations (message_id, user_id, model) VALUES (am.id, p_user, p_model);
    PERFORM mjs.emit(p_user, 'message.created', mjs.message_json(um));
    PERFORM mjs.emit(p_user, 'message.created', mjs.message_json(am));
    event_seq := mjs.emit(p_user, 'conversation.updated', mjs.conversation_json(c));
    PERFORM pg_notify('mjs_work', '');
    body := (SELECT row_to_json(r) FROM (SELECT mjs.message_json(um) AS user_message,
                                                mjs.message_json(am) AS assistant_message) r);
END
$$;
COMMENT ON FUNCTION mjs.send_message(uuid, uuid, text, text) IS 'POST /api/conversations/{id}/messages in one transaction: both messages, the job, the events, and a wake-up for the workers; event_seq is the seq of its last event.';

-- Stop: a queued job is stopped right here; a running one is flagged and its
-- worker is told on mjs_stop (payload: the message id).
-- outcome: not_found | finished (nothing to stop) | stopped | stopping.
CREATE FUNCTION mjs.stop_message(p_user uuid, p_message uuid, OUT outcome text, OUT message json,
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

-- POST /api/tasks: the row, task.created, and a wake-up for the workers on
-- mjs_work (payload "task"), all in one transaction. body is NULL when the
-- user does not exist.
CREATE FUNCTION mjs.create_task(p_user uuid, p_kind text, p_prompt text, p_options jsonb,
                                OUT body json, OUT event_seq bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t mjs.tasks;
BEGIN
    IF mjs.lock_user(p_user) IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO mjs.tasks (user_id, kind, prompt, options, created_at, updated_at)
        VALUES (p_user, p_kind, p_prompt, coalesce(p_options, '{}'), clock_timestamp(), clock_timestamp())
        RETURNING * INTO t;
    body := mjs.task_json(t);
    event_seq := mjs.emit(p_user, 'task.created', body);
    PERFORM pg_notify('mjs_work', 'task');
END
$$;
COMMENT ON FUNCTION mjs.create_task(uuid, text, text, jsonb) IS 'POST /api/tasks in one transaction: the task (submitting), task.created and a NOTIFY mjs_work for the workers; event_seq is the seq of task.created.';

-- PATCH, DELETE and restore. p_action: blur (p_blurred), delete, restore.
-- outcome: not_found | unchanged (nothing to change, no event) | not_deleted
-- (restore of a task that is not in the trash) | changed (event emitted).
CREATE FUNCTION mjs.change_task(p_user uuid, p_task uuid, p_action text, p_blurred boolean,
                                OUT outcome text, OUT task json, OUT event_seq bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t mjs.tasks;
BEGIN
    PERFORM mjs.lock_user(p_user);
    SELECT * INTO t FROM mjs.tasks WHERE id = p_task AND user_id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    IF p_action = 'blur' AND t.blurred IS DISTINCT FROM p_blurred THEN
        UPDATE mjs.tasks SET blurred = p_blurred, updated_at = clock_timestamp() WHERE id = t.id RETURNING * INTO t;
        PERFORM mjs.emit(p_user, 'task.updated', mjs.task_json(t));
        outcome := 'changed';
    ELSIF p_action = 'delete' AND t.deleted_at IS NULL THEN
        UPDATE mjs.tasks SET deleted_at = clock_timestamp(), updated_at = clock_timestamp()
            WHERE id = t.id RETURNING * INTO t;
        PERFORM mjs.emit(p_user, 'task.deleted', json_build_object('id', t.id));
        outcome := 'changed';
    ELSIF p_action = 'restore' AND t.deleted_at IS NOT NULL THEN
        UPDATE mjs.tasks SET deleted_at = NULL, updated_at = clock_timestamp() WHERE id = t.id RETURNING * INTO t;
        PERFORM mjs.emit(p_user, 'task.restored', mjs.task_json(t));
        outcome := 'changed';
    ELSIF p_action = 'restore' THEN
        outcome := 'not_deleted';
    ELSE
        outcome := 'unchanged';
    END IF;
    task := mjs.task_json(t);
    event_seq := mjs.user_event_seq(p_user);
END
$$;
COMMENT ON FUNCTION mjs.change_task(uuid, uuid, text, boolean) IS 'PATCH blurred, DELETE (soft) and restore of a task: changes the row and emits task.updated, task.deleted or task.restored, or nothing when nothing changes; event_seq is the user''s seq of the answer.';

-- 012_user_limits: per-user caps and fair claiming (issue 13, DESIGN.md "Limits").
--
-- Caps. A user may have at most max_replies_per_user replies queued or running
-- and max_tasks_per_user tasks submitting or processing (mjs.conf). The count
-- is taken under the user's row lock, the lock every write of that user takes
-- first, so two requests at once cannot both slip under the cap. Over the cap
-- the write changes nothing and says how many are open; the API answers 429.
-- Open streams are capped per responder, in memory (mjs-api(8)); each
-- responder's heartbeat lists the users it holds at the cap (capped_users).
--
-- Fair claiming. A worker takes jobs in rounds across users: a job's rank is
-- the number of its user's jobs running now plus its place among that user's
-- claimable jobs (oldest first), and the lowest ranks go first (then the
-- oldest). So one user's hundred queued replies wait behind another user's
-- first, and a user with nothing running goes before one with jobs running.

ALTER TABLE mjs.responders ADD COLUMN capped_users uuid[] NOT NULL DEFAULT '{}';
COMMENT ON COLUMN mjs.responders.capped_users IS 'Users holding max_streams_per_user streams on this responder at heartbeat_at (their next stream there gets 429).';

CREATE INDEX generations_user_open ON mjs.generations (user_id) WHERE state <> 'done';
CREATE INDEX tasks_user_open ON mjs.tasks (user_id) WHERE status IN ('submitting', 'processing');

DROP FUNCTION mjs.send_message(uuid, uuid, text, text);
DROP FUNCTION mjs.create_task(uuid, text, text, jsonb);

-- As in 009, with the cap. open_replies is set (and body is NULL) when the
-- user already has p_max_open replies queued or running; body is NULL without
-- open_replies when there is no such conversation.
CREATE FUNCTION mjs.send_message(p_user uuid, p_conversation uuid, p_content text, p_model text,
                                 p_max_open integer,
                                 OUT body json, OUT event_seq bigint, OUT open_replies integer)
LANGUAGE plpgsql AS $$
DECLARE
    c  mjs.conversations;
    um mjs.messages;
    am mjs.messages;
    n  integer;
    t  timestamptz := clock_timestamp();
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
COMMENT ON FUNCTION mjs.send_message(uuid, uuid, text, text, integer) IS 'POST /api/conversations/{id}/messages in one transaction: both messages, the job, the events, and a wake-up for the workers; event_seq is the seq of its last event. Refused (open_replies set, nothing changed) when the user has p_max_open replies queued or running.';

-- As in 009, with the cap: running_tasks is set (and body is NULL) when the
-- user already has p_max_running tasks submitting or processing.
CREATE FUNCTION mjs.create_task(p_user uuid, p_kind text, p_prompt text, p_options jsonb,
                                p_max_running integer,
                                OUT body json, OUT event_seq bigint, OUT running_tasks integer)
LANGUAGE plpgsql AS $$
DECLARE
    t mjs.tasks;
    n integer;
BEGIN
    IF mjs.lock_user(p_user) IS NULL THEN
        RETURN;
    END IF;
    SELECT count(*) INTO n FROM mjs.tasks
        WHERE user_id = p_user AND status IN ('submitting', 'processing');
    IF n >= p_max_running THEN
        running_tasks := n;
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
COMMENT ON FUNCTION mjs.create_task(uuid, text, text, jsonb, integer) IS 'POST /api/tasks in one transaction: the task (submitting), task.created and a NOTIFY mjs_work for the workers; event_seq is the seq of task.created. Refused (running_tasks set, nothing changed) when the user has p_max_running tasks open.';

-- Same signature and result as in 003, in fair order (see the top).
CREATE OR REPLACE FUNCTION mjs.claim_generations(p_worker text, p_limit integer, p_lease interval)
RETURNS TABLE (message_id uuid, user_id uuid, conversation_id uuid, model text, attempts integer,
               status text, content_chars integer, stop_requested boolean, recovered boolean)
LANGUAGE sql AS $$
  WITH o AS (
      SELECT g.message_id, g.user_id, g.created_at,
             g.state = 'queued' OR g.lease_until < now() AS claimable
      FROM mjs.generations g WHERE g.state <> 'done'),
  r AS (
      SELECT o.message_id, o.created_at, o.claimable,
             count(*) FILTER (WHERE NOT o.claimable) OVER (PARTITION BY o.user_id)
             + row_number() OVER (PARTITION BY o.user_id, o.claimable
                                  ORDER BY o.created_at, o.message_id) AS rank
      FROM o),
  c AS (
      SELECT g.message_id, g.state = 'running' AS recovered
      FROM mjs.generations g JOIN r ON r.message_id = g.message_id
      WHERE r.claimable AND (g.state = 'queued' OR (g.state = 'running' AND g.lease_until < now()))
      ORDER BY r.rank, r.created_at, g.message_id
      LIMIT p_limit FOR UPDATE OF g SKIP LOCKED),
  u AS (
      UPDATE mjs.generations g SET state = 'running', worker = p_worker, lease_until = now() + p_lease,
             attempts = g.attempts + 1, started_at = coalesce(g.started_at, now())
      FROM c WHERE g.message_id = c.message_id RETURNING g.*, c.recovered)
  SELECT u.message_id, u.user_id, m.conversation_id, u.model, u.attempts, m.status,
         mjs.message_chars(m), u.stop_requested, u.recovered
  FROM u JOIN mjs.messages m ON m.id = u.message_id
$$;
COMMENT ON FUNCTION mjs.claim_generations(text, integer, interval) IS 'Worker side: lease queued or abandoned jobs (FOR UPDATE SKIP LOCKED), round-robin across users: fewest running first, each user''s oldest first.';

-- Same signature and result as in 006, in fair order.
CREATE OR REPLACE FUNCTION mjs.claim_tasks(p_worker text, p_limit integer, p_lease interval)
RETURNS TABLE (id uuid, user_id uuid, kind text, prompt text, options text, upstream_id text,
               status text, progress integer, attempts integer, age_ms bigint, recovered boolean)
LANGUAGE sql AS $$
  WITH o AS (
      SELECT t.id, t.user_id, t.created_at,
             t.worker IS NULL OR t.lease_until < now() AS claimable
      FROM mjs.tasks t WHERE t.status IN ('submitting', 'processing')),
  r AS (
      SELECT o.id, o.created_at, o.claimable,
             count(*) FILTER (WHERE NOT o.claimable) OVER (PARTITION BY o.user_id)
             + row_number() OVER (PARTITION BY o.user_id, o.claimable ORDER BY o.created_at, o.id) AS rank
      FROM o),
  c AS (
      SELECT t.id, t.worker IS NOT NULL AS recovered
      FROM mjs.tasks t JOIN r ON r.id = t.id
      WHERE r.claimable AND t.status IN ('submitting', 'processing')
        AND (t.worker IS NULL OR t.lease_until < now())
      ORDER BY r.rank, r.created_at, t.id
      LIMIT p_limit FOR UPDATE OF t SKIP LOCKED),
  u AS (
      UPDATE mjs.tasks t SET worker = p_worker, lease_until = now() + p_lease, attempts = t.attempts + 1
      FROM c WHERE t.id = c.id RETURNING t.*, c.recovered)
  SELECT u.id, u.user_id, u.kind, u.prompt, u.options::text, u.upstream_id, u.status, u.progress,
         u.attempts, (extract(epoch FROM now() - coalesce(u.retried_at, u.created_at)) * 1000)::bigint,
         u.recovered
  FROM u
$$;
COMMENT ON FUNCTION mjs.claim_tasks(text, integer, interval) IS 'Worker side: lease new or abandoned open tasks (FOR UPDATE SKIP LOCKED), round-robin across users as claim_generations; age_ms counts from the last retry, else the creation.';

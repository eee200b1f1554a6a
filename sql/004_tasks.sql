-- 004_tasks: image and video tasks. A task is both what the user sees (status,
-- progress, result, blurred, deleted_at) and the job a worker leases (worker,
-- lease_until, upstream_id). Every visible change emits its event in the same
-- transaction; the worker's batch update emits task.updated only when a visible
-- field really changed. Lock order as everywhere: the user's row first.

CREATE TABLE mjs.tasks (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES mjs.users (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('image', 'video')),
    prompt       text NOT NULL,
    options      jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL DEFAULT 'submitting'
                 CHECK (status IN ('submitting', 'processing', 'succeeded', 'failed')),
    progress     integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    result       jsonb,
    error        text,
    blurred      boolean NOT NULL DEFAULT false,
    deleted_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    upstream_id  text,
    worker       text,
    lease_until  timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    submitted_at timestamptz,
    finished_at  timestamptz
);
CREATE INDEX tasks_user_created ON mjs.tasks (user_id, created_at DESC, id DESC);
CREATE INDEX tasks_open ON mjs.tasks (created_at) WHERE status IN ('submitting', 'processing');
COMMENT ON TABLE mjs.tasks IS 'Image and video tasks: the user''s object and the job a worker leases. Deleting is soft (deleted_at); a deleted task keeps running and keeps its result for a restore.';
COMMENT ON COLUMN mjs.tasks.id IS 'The task id the API shows.';
COMMENT ON COLUMN mjs.tasks.user_id IS 'Owner; every other user gets 404 for this id.';
COMMENT ON COLUMN mjs.tasks.kind IS 'image (Midjourney-proxy upstream) or video (OpenAI-style video upstream).';
COMMENT ON COLUMN mjs.tasks.prompt IS 'What to draw or film, as the user wrote it (at most 4000 characters).';
COMMENT ON COLUMN mjs.tasks.options IS 'Optional request fields the API accepted (video: model, seconds, size); passed to the upstream.';
COMMENT ON COLUMN mjs.tasks.status IS 'submitting -> processing -> succeeded | failed; it only moves forward.';
COMMENT ON COLUMN mjs.tasks.progress IS 'Percent done as the upstream reports it, 0-100; it only grows, and is 100 on success.';
COMMENT ON COLUMN mjs.tasks.result IS 'JSON array of result URLs once succeeded, else NULL.';
COMMENT ON COLUMN mjs.tasks.error IS 'Why a failed task failed, in words a user can act on.';
COMMENT ON COLUMN mjs.tasks.blurred IS 'The user asked to blur the result in every view (PATCH blurred).';
COMMENT ON COLUMN mjs.tasks.deleted_at IS 'Set when the task is in the trash (DELETE); NULL again after a restore.';
COMMENT ON COLUMN mjs.tasks.created_at IS 'Creation; lists are ordered by it, newest first.';
COMMENT ON COLUMN mjs.tasks.updated_at IS 'Last visible change (status, progress, result, error, blurred, deleted_at).';
COMMENT ON COLUMN mjs.tasks.upstream_id IS 'The upstream''s id of the job, stored once the submit answered: a worker that takes the task over polls it and never submits again.';
COMMENT ON COLUMN mjs.tasks.worker IS 'Name of the worker (host:pid) holding or last holding the lease.';
COMMENT ON COLUMN mjs.tasks.lease_until IS 'The worker renews this while the task is open; once past, another worker takes the task over.';
COMMENT ON COLUMN mjs.tasks.attempts IS 'How many times a worker claimed the task (1 unless a worker died or shut down).';
COMMENT ON COLUMN mjs.tasks.submitted_at IS 'When the upstream accepted the submit (upstream_id known).';
COMMENT ON COLUMN mjs.tasks.finished_at IS 'When the task reached succeeded or failed.';

CREATE FUNCTION mjs.task_json(t mjs.tasks) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT row_to_json(r) FROM (SELECT t.id, t.kind, t.prompt, t.options, t.status, t.progress, t.result,
      t.error, t.blurred, mjs.rfc3339(t.deleted_at) AS deleted_at,
      mjs.rfc3339(t.created_at) AS created_at, mjs.rfc3339(t.updated_at) AS updated_at) r
$$;
COMMENT ON FUNCTION mjs.task_json(mjs.tasks) IS 'The API''s JSON for a task (REST body and event data).';

-- POST /api/tasks: the row, task.created, and a wake-up for the workers on
-- mjs_work (payload "task"), all in one transaction.
CREATE FUNCTION mjs.create_task(p_user uuid, p_kind text, p_prompt text, p_options jsonb)
RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    t mjs.tasks;
    j json;
BEGIN
    IF mjs.lock_user(p_user) IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO mjs.tasks (user_id, kind, prompt, options, created_at, updated_at)
        VALUES (p_user, p_kind, p_prompt, coalesce(p_options, '{}'), clock_timestamp(), clock_timestamp())
        RETURNING * INTO t;
    j := mjs.task_json(t);
    PERFORM mjs.emit(p_user, 'task.created', j);
    PERFORM pg_notify('mjs_work', 'task');
    RETURN j;
END
$$;
COMMENT ON FUNCTION mjs.create_task(uuid, text, text, jsonb) IS 'POST /api/tasks in one transaction: the task (submitting), task.created and a NOTIFY mjs_work for the workers.';

-- PATCH, DELETE and restore. p_action: blur (p_blurred), delete, restore.
-- outcome: not_found | unchanged (nothing to change, no event) | not_deleted
-- (restore of a task that is not in the trash) | changed (event emitted).
CREATE FUNCTION mjs.change_task(p_user uuid, p_task uuid, p_action text, p_blurred boolean,
                                OUT outcome text, OUT task json)
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
END
$$;
COMMENT ON FUNCTION mjs.change_task(uuid, uuid, text, boolean) IS 'PATCH blurred, DELETE (soft) and restore of a task: changes the row and emits task.updated, task.deleted or task.restored, or nothing when nothing changes.';

-- Claims up to p_limit open tasks for worker p_worker: never claimed ones and
-- those whose lease expired (their worker died or handed them back). Only task
-- rows are locked (SKIP LOCKED), never a user row, so a claim never waits on a
-- REST write. Nothing visible changes, so nothing is emitted.
CREATE FUNCTION mjs.claim_tasks(p_worker text, p_limit integer, p_lease interval)
RETURNS TABLE (id uuid, user_id uuid, kind text, prompt text, options text, upstream_id text,
               status text, progress integer, attempts integer, age_ms bigint, recovered boolean)
LANGUAGE sql AS $$
  WITH c AS (
      SELECT t.id, t.worker IS NOT NULL AS recovered FROM mjs.tasks t
      WHERE t.status IN ('submitting', 'processing') AND (t.worker IS NULL OR t.lease_until < now())
      ORDER BY t.created_at LIMIT p_limit FOR UPDATE SKIP LOCKED),
  u AS (
      UPDATE mjs.tasks t SET worker = p_worker, lease_until = now() + p_lease, attempts = t.attempts + 1
      FROM c WHERE t.id = c.id RETURNING t.*, c.recovered)
  SELECT u.id, u.user_id, u.kind, u.prompt, u.options::text, u.upstream_id, u.status, u.progress,
         u.attempts, (extract(epoch FROM now() - u.created_at) * 1000)::bigint, u.recovered
  FROM u
$$;
COMMENT ON FUNCTION mjs.claim_tasks(text, integer, interval) IS 'Worker side: lease new or abandoned open tasks (FOR UPDATE SKIP LOCKED).';

-- One write of a worker tick: for every task in p (a JSON array of
-- {"id", "upstream_id", "status", "progress", "result", "error"}; null fields
-- mean "no news"), store the upstream id and move the visible fields. Status
-- only moves forward and progress only grows; task.updated is emitted only when
-- a visible field changed. Users are locked in id order, each before its task.
-- Returns the ids this worker must drop: gone, finished, or leased by another.
CREATE FUNCTION mjs.update_tasks(p_worker text, p json) RETURNS SETOF uuid
LANGUAGE plpgsql AS $$
DECLARE
    r        record;
    t        mjs.tasks;
    v_status text;
    v_prog   integer;
    v_result jsonb;
    v_error  text;
    v_final  boolean;
BEGIN
    FOR r IN
        SELECT x.id, x.upstream_id, x.status, x.progress, x.result, x.error, tt.user_id
        FROM json_to_recordset(p) AS x(id uuid, upstream_id text, status text, progress integer,
                                       result jsonb, error text)
        LEFT JOIN mjs.tasks tt ON tt.id = x.id
        ORDER BY tt.user_id, x.id
    LOOP
        IF r.user_id IS NULL THEN
            RETURN NEXT r.id;
            CONTINUE;
        END IF;
        PERFORM mjs.lock_user(r.user_id);
        SELECT * INTO t FROM mjs.tasks WHERE id = r.id FOR UPDATE;
        IF NOT FOUND OR t.worker IS DISTINCT FROM p_worker OR t.status IN ('succeeded', 'failed') THEN
            RETURN NEXT r.id;
            CONTINUE;
        END IF;
        v_status := t.status;
        IF r.status IN ('succeeded', 'failed') OR (r.status = 'processing' AND t.status = 'submitting') THEN
            v_status := r.status;
        END IF;
        v_final := v_status IN ('succeeded', 'failed');
        v_prog := greatest(t.progress, least(100, greatest(0, coalesce(r.progress, 0))));
        IF v_status = 'succeeded' THEN
            v_prog := 100;
        END IF;
        v_result := CASE WHEN v_status = 'succeeded' THEN coalesce(r.result, t.result) ELSE t.result END;
        v_error := CASE WHEN v_status = 'failed' THEN coalesce(r.error, t.error, 'failed') ELSE t.error END;
        IF v_status <> t.status OR v_prog <> t.progress OR v_result IS DISTINCT FROM t.result
           OR v_error IS DISTINCT FROM t.error THEN
            UPDATE mjs.tasks SET status = v_status, progress = v_prog, result = v_result, error = v_error,
                   upstream_id = coalesce(upstream_id, r.upstream_id),
                   submitted_at = CASE WHEN upstream_id IS NULL AND r.upstream_id IS NOT NULL
                                       THEN clock_timestamp() ELSE submitted_at END,
                   finished_at = CASE WHEN v_final THEN clock_timestamp() END,
                   lease_until = CASE WHEN v_final THEN NULL ELSE lease_until END,
                   updated_at = clock_timestamp()
                WHERE id = t.id RETURNING * INTO t;
            PERFORM mjs.emit(t.user_id, 'task.updated', mjs.task_json(t));
        ELSIF t.upstream_id IS NULL AND r.upstream_id IS NOT NULL THEN
            UPDATE mjs.tasks SET upstream_id = r.upstream_id, submitted_at = clock_timestamp() WHERE id = t.id;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION mjs.update_tasks(text, json) IS 'Worker side: one transaction per tick carrying every task with news; task.updated only for visible changes.';

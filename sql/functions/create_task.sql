-- POST /api/tasks: the row, task.created, and a wake-up for the workers on
-- mjs_work (payload "task"), all in one transaction; event_seq is the seq of
-- task.created. The count of the user's open tasks is taken under the user's
-- lock, so two requests at once cannot both slip under the cap: with
-- p_max_running open already, running_tasks is set, body is NULL and nothing
-- changes. body is NULL without running_tasks when the user does not exist.
CREATE OR REPLACE FUNCTION mjs.create_task(p_user uuid, p_kind text, p_prompt text, p_options jsonb,
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

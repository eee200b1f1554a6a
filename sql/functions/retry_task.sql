-- mjsctl task retry. outcome: not_found | not_failed (task is the task as it
-- is, unchanged) | retried (task is the task as a worker will find it; the
-- event and the wake-up for the workers are sent).
-- The user is locked first, as in every write; the task's owner never changes,
-- so reading it before the lock is safe.
CREATE OR REPLACE FUNCTION mjs.retry_task(p_task uuid, OUT outcome text, OUT task json)
LANGUAGE plpgsql AS $$
DECLARE
    t mjs.tasks;
BEGIN
    IF mjs.lock_user((SELECT tt.user_id FROM mjs.tasks tt WHERE tt.id = p_task)) IS NULL THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    SELECT * INTO t FROM mjs.tasks WHERE id = p_task FOR UPDATE;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    IF t.status <> 'failed' THEN
        outcome := 'not_failed';
        task := mjs.task_json(t);
        RETURN;
    END IF;
    UPDATE mjs.tasks SET status = 'submitting', progress = 0, result = NULL, error = NULL,
           upstream_id = NULL, worker = NULL, lease_until = NULL, attempts = 0,
           submitted_at = NULL, finished_at = NULL, retried_at = clock_timestamp(),
           updated_at = clock_timestamp()
        WHERE id = t.id RETURNING * INTO t;
    task := mjs.task_json(t);
    PERFORM mjs.emit(t.user_id, 'task.updated', task);
    PERFORM pg_notify('mjs_work', 'task');
    outcome := 'retried';
END
$$;
COMMENT ON FUNCTION mjs.retry_task(uuid) IS 'mjsctl task retry in one transaction: a failed task back to submitting with no upstream id (a new submit), attempts 0, task.updated to every stream of its user and a NOTIFY mjs_work for the workers. Any other status: not_failed, nothing changes.';

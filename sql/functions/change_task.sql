-- PATCH, DELETE and restore. p_action: blur (p_blurred), delete, restore.
-- outcome: not_found | unchanged (nothing to change, no event) | not_deleted
-- (restore of a task that is not in the trash) | changed (event emitted).
CREATE OR REPLACE FUNCTION mjs.change_task(p_user uuid, p_task uuid, p_action text, p_blurred boolean,
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

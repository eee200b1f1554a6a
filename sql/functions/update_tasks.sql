-- One write of a worker tick: for every task in p (a JSON array of
-- {"id", "upstream_id", "status", "progress", "result", "error", "content_url"};
-- null fields mean "no news"), store the upstream id and move the visible
-- fields. Status only moves forward and progress only grows; task.updated is
-- emitted only when a visible field changed. content_url (a succeeded video
-- that only the upstream's key can fetch) is kept and never shown: the result
-- is then /api/tasks/{id}/content. Users are locked in id order, each before
-- its task. Returns the ids this worker must drop: gone, finished, or leased
-- by another.
CREATE OR REPLACE FUNCTION mjs.update_tasks(p_worker text, p json) RETURNS SETOF uuid
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
        SELECT x.id, x.upstream_id, x.status, x.progress, x.result, x.error, x.content_url, tt.user_id
        FROM json_to_recordset(p) AS x(id uuid, upstream_id text, status text, progress integer,
                                       result jsonb, error text, content_url text)
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
                   content_url = CASE WHEN v_status = 'succeeded' THEN coalesce(r.content_url, content_url)
                                      ELSE content_url END,
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
COMMENT ON FUNCTION mjs.update_tasks(text, json) IS 'Worker side: one transaction per tick carrying every task with news; task.updated only for visible changes; content_url kept, never shown.';

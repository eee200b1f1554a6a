-- A row of mjs.task_out, as mjs.conversation_json() does: a body with a
-- subquery (row_to_json of a SELECT) is not inlined, and cost twice as much
-- per task.
CREATE OR REPLACE FUNCTION mjs.task_json(t mjs.tasks) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT row_to_json(ROW(t.id, t.kind, t.prompt, t.options, t.status, t.progress, t.result, t.error,
                         t.blurred, mjs.rfc3339(t.deleted_at), mjs.rfc3339(t.created_at),
                         mjs.rfc3339(t.updated_at))::mjs.task_out)
$$;
COMMENT ON FUNCTION mjs.task_json(mjs.tasks) IS 'The API''s JSON for a task (REST body and event data).';

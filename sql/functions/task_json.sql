CREATE OR REPLACE FUNCTION mjs.task_json(t mjs.tasks) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT row_to_json(r) FROM (SELECT t.id, t.kind, t.prompt, t.options, t.status, t.progress, t.result,
      t.error, t.blurred, mjs.rfc3339(t.deleted_at) AS deleted_at,
      mjs.rfc3339(t.created_at) AS created_at, mjs.rfc3339(t.updated_at) AS updated_at) r
$$;
COMMENT ON FUNCTION mjs.task_json(mjs.tasks) IS 'The API''s JSON for a task (REST body and event data).';

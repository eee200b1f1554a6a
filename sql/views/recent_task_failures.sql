CREATE OR REPLACE VIEW mjs.recent_task_failures AS
SELECT t.id, u.username, t.kind, t.upstream_id, t.worker, t.attempts, t.progress, t.error,
       t.finished_at AS failed_at, t.finished_at - coalesce(t.retried_at, t.created_at) AS ran_for,
       t.retried_at, left(t.prompt, 80) AS prompt
FROM mjs.tasks t
JOIN mjs.users u ON u.id = t.user_id
WHERE t.status = 'failed' AND t.finished_at > now() - interval '24 hours'
ORDER BY t.finished_at DESC;
COMMENT ON VIEW mjs.recent_task_failures IS 'Tasks that failed in the last 24 hours, newest first, with the error the user saw (upstream refused or failed the job, upstream down past task_upstream_grace, past task_deadline); mjsctl task retry ID submits one again.';

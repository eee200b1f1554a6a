-- 006_ops_tasks: what operators need for image and video tasks: a retry of a
-- failed task (mjsctl task retry) and views for psql. Documented in mjs(7).
--
-- A retry resubmits: a failed task's upstream job is final (failed, refused or
-- given up on), so polling it again could only fail again. The task goes back
-- to submitting without an upstream id and the next claim submits a new job.
-- task_deadline counts from the retry (retried_at), not from the creation, or a
-- task older than the deadline would fail again at its first tick.

ALTER TABLE mjs.tasks ADD COLUMN retried_at timestamptz;
COMMENT ON COLUMN mjs.tasks.status IS 'submitting -> processing -> succeeded | failed; it only moves forward, except that mjs.retry_task takes a failed task back to submitting.';
COMMENT ON COLUMN mjs.tasks.upstream_id IS 'The upstream''s id of the job, stored once the submit answered: a worker that takes the task over polls it and never submits again. Cleared only by mjs.retry_task (a new submit).';
COMMENT ON COLUMN mjs.tasks.attempts IS 'How many times a worker claimed the task since its creation or last retry (1 unless a worker died or shut down).';
COMMENT ON COLUMN mjs.tasks.retried_at IS 'When an operator last retried the failed task (mjsctl task retry); task_deadline counts from here when set, else from created_at.';

-- Same signature and result as in 004; only the age the worker's deadline is
-- measured from changes.
CREATE OR REPLACE FUNCTION mjs.claim_tasks(p_worker text, p_limit integer, p_lease interval)
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
         u.attempts, (extract(epoch FROM now() - coalesce(u.retried_at, u.created_at)) * 1000)::bigint,
         u.recovered
  FROM u
$$;
COMMENT ON FUNCTION mjs.claim_tasks(text, integer, interval) IS 'Worker side: lease new or abandoned open tasks (FOR UPDATE SKIP LOCKED); age_ms counts from the last retry, else the creation.';

-- mjsctl task retry. outcome: not_found | not_failed (task is the task as it
-- is, unchanged) | retried (task is the task as a worker will find it; the
-- event and the wake-up for the workers are sent).
-- The user is locked first, as in every write; the task's owner never changes,
-- so reading it before the lock is safe.
CREATE FUNCTION mjs.retry_task(p_task uuid, OUT outcome text, OUT task json)
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

CREATE VIEW mjs.active_tasks AS
SELECT t.id, u.username, t.user_id, t.kind, t.status, t.progress, t.upstream_id, t.worker,
       t.attempts,
       CASE
           WHEN t.worker IS NULL THEN 'unclaimed'
           WHEN t.lease_until < now() THEN 'expired'
           ELSE 'held'
       END AS lease,
       t.lease_until - now() AS lease_left,
       now() - t.created_at AS age,
       t.submitted_at,
       t.updated_at AS last_change_at,
       now() - t.updated_at AS since_last_change,
       t.retried_at,
       t.deleted_at IS NOT NULL AS deleted
FROM mjs.tasks t
JOIN mjs.users u ON u.id = t.user_id
WHERE t.status IN ('submitting', 'processing')
ORDER BY t.created_at;
COMMENT ON VIEW mjs.active_tasks IS 'Image and video tasks not finished yet, oldest first: who, which worker, lease (unclaimed, held, expired: its worker died and the next claim takes it over) and time left, upstream job id (NULL until the submit answered), age, and the last visible change (status or progress; a worker writes only news, not every poll).';

CREATE VIEW mjs.recent_task_failures AS
SELECT t.id, u.username, t.kind, t.upstream_id, t.worker, t.attempts, t.progress, t.error,
       t.finished_at AS failed_at, t.finished_at - coalesce(t.retried_at, t.created_at) AS ran_for,
       t.retried_at, left(t.prompt, 80) AS prompt
FROM mjs.tasks t
JOIN mjs.users u ON u.id = t.user_id
WHERE t.status = 'failed' AND t.finished_at > now() - interval '24 hours'
ORDER BY t.finished_at DESC;
COMMENT ON VIEW mjs.recent_task_failures IS 'Tasks that failed in the last 24 hours, newest first, with the error the user saw (upstream refused or failed the job, upstream down past task_upstream_grace, past task_deadline); mjsctl task retry ID submits one again.';

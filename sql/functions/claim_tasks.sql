-- Claims up to p_limit open tasks for worker p_worker: never claimed ones and
-- those whose lease expired (their worker died or handed them back), fair
-- across users and in two steps exactly as mjs.claim_generations. Only task
-- rows are locked (SKIP LOCKED), never a user row, so a claim never waits on a
-- REST write. Nothing visible changes, so nothing is emitted. age_ms counts
-- from the last retry, else from the creation (task_deadline).
CREATE OR REPLACE FUNCTION mjs.claim_tasks(p_worker text, p_limit integer, p_lease interval)
RETURNS TABLE (id uuid, user_id uuid, kind text, prompt text, options text, upstream_id text,
               status text, progress integer, attempts integer, age_ms bigint, recovered boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    ids uuid[];
BEGIN
    ids := ARRAY(
        SELECT r.id FROM (
            SELECT o.id, o.created_at, o.claimable,
                   count(*) FILTER (WHERE NOT o.claimable) OVER (PARTITION BY o.user_id)
                   + row_number() OVER (PARTITION BY o.user_id, o.claimable ORDER BY o.created_at, o.id) AS rank
            FROM (SELECT t.id, t.user_id, t.created_at,
                         t.worker IS NULL OR t.lease_until < now() AS claimable
                  FROM mjs.tasks t WHERE t.status IN ('submitting', 'processing')) o) r
        WHERE r.claimable
        ORDER BY r.rank, r.created_at, r.id
        LIMIT 2 * p_limit + 16);
    RETURN QUERY
    WITH c AS (
        SELECT t.id, t.worker IS NOT NULL AS recovered FROM mjs.tasks t
        WHERE t.id = ANY (ids) AND t.status IN ('submitting', 'processing')
          AND (t.worker IS NULL OR t.lease_until < now())
        ORDER BY array_position(ids, t.id)
        LIMIT p_limit FOR UPDATE SKIP LOCKED),
    u AS (
        UPDATE mjs.tasks t SET worker = p_worker, lease_until = now() + p_lease, attempts = t.attempts + 1
        FROM c WHERE t.id = c.id RETURNING t.*, c.recovered)
    SELECT u.id, u.user_id, u.kind, u.prompt, u.options::text, u.upstream_id, u.status, u.progress,
           u.attempts, (extract(epoch FROM now() - coalesce(u.retried_at, u.created_at)) * 1000)::bigint,
           u.recovered
    FROM u;
END
$$;
COMMENT ON FUNCTION mjs.claim_tasks(text, integer, interval) IS 'Worker side: lease new or abandoned open tasks (FOR UPDATE SKIP LOCKED), round-robin across users as claim_generations; age_ms counts from the last retry, else the creation.';

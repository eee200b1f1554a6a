-- 014_fair_claim_lean: the fair claims of 012, planned in two steps.
--
-- As one statement, 012 joined the ranked jobs back to mjs.generations, and the
-- planner, misjudging the window's rows, nested the join: 2.7 s for one claim
-- with 2,000 replies queued. Now the ranking picks the ids first (twice as many
-- as asked, plus some, for rows other workers hold locked), and the claim
-- locks those by primary key in their ranked order: 4 ms at 2,000 queued.
-- Same signatures, results and order as 012.

CREATE OR REPLACE FUNCTION mjs.claim_generations(p_worker text, p_limit integer, p_lease interval)
RETURNS TABLE (message_id uuid, user_id uuid, conversation_id uuid, model text, attempts integer,
               status text, content_chars integer, stop_requested boolean, recovered boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    ids uuid[];
BEGIN
    ids := ARRAY(
        SELECT r.message_id FROM (
            SELECT o.message_id, o.created_at, o.claimable,
                   count(*) FILTER (WHERE NOT o.claimable) OVER (PARTITION BY o.user_id)
                   + row_number() OVER (PARTITION BY o.user_id, o.claimable
                                        ORDER BY o.created_at, o.message_id) AS rank
            FROM (SELECT g.message_id, g.user_id, g.created_at,
                         g.state = 'queued' OR g.lease_until < now() AS claimable
                  FROM mjs.generations g WHERE g.state <> 'done') o) r
        WHERE r.claimable
        ORDER BY r.rank, r.created_at, r.message_id
        LIMIT 2 * p_limit + 16);
    RETURN QUERY
    WITH c AS (
        SELECT g.message_id, g.state = 'running' AS recovered FROM mjs.generations g
        WHERE g.message_id = ANY (ids)
          AND (g.state = 'queued' OR (g.state = 'running' AND g.lease_until < now()))
        ORDER BY array_position(ids, g.message_id)
        LIMIT p_limit FOR UPDATE SKIP LOCKED),
    u AS (
        UPDATE mjs.generations g SET state = 'running', worker = p_worker, lease_until = now() + p_lease,
               attempts = g.attempts + 1, started_at = coalesce(g.started_at, now())
        FROM c WHERE g.message_id = c.message_id RETURNING g.*, c.recovered)
    SELECT u.message_id, u.user_id, m.conversation_id, u.model, u.attempts, m.status,
           mjs.message_chars(m), u.stop_requested, u.recovered
    FROM u JOIN mjs.messages m ON m.id = u.message_id;
END
$$;
COMMENT ON FUNCTION mjs.claim_generations(text, integer, interval) IS 'Worker side: lease queued or abandoned jobs (FOR UPDATE SKIP LOCKED), round-robin across users: fewest running first, each user''s oldest first.';

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

CREATE OR REPLACE VIEW mjs.stuck_generations AS
SELECT g.message_id, u.username, g.state, m.status, g.worker, g.attempts, g.tokens,
       now() - g.created_at AS age,
       now() - coalesce(g.last_flush_at, g.started_at) AS quiet_for,
       g.lease_until,
       CASE
           WHEN g.state = 'running' AND g.lease_until < now() THEN 'lease expired'
           WHEN g.state = 'running' THEN 'no flush for 5 minutes'
           ELSE 'queued for 5 minutes'
       END AS reason
FROM mjs.generations g
JOIN mjs.users u ON u.id = g.user_id
JOIN mjs.messages m ON m.id = g.message_id
WHERE (g.state = 'running' AND (g.lease_until < now()
                                OR coalesce(g.last_flush_at, g.started_at) < now() - interval '5 minutes'))
   OR (g.state = 'queued' AND g.created_at < now() - interval '5 minutes')
ORDER BY g.created_at;
COMMENT ON VIEW mjs.stuck_generations IS 'Replies that need a look: a running one whose lease expired (its worker died; the next claim takes it over), one running without a flush for 5 minutes, one queued for 5 minutes (no worker claims).';

CREATE OR REPLACE VIEW mjs.active_generations AS
SELECT g.message_id, u.username, g.user_id, g.state, m.status, g.model, g.worker, g.attempts,
       g.tokens, g.stop_requested,
       now() - g.created_at AS age,
       now() - g.started_at AS running_for,
       g.last_flush_at,
       now() - g.last_flush_at AS since_last_flush,
       g.lease_until - now() AS lease_left
FROM mjs.generations g
JOIN mjs.users u ON u.id = g.user_id
JOIN mjs.messages m ON m.id = g.message_id
WHERE g.state <> 'done'
ORDER BY g.created_at;
COMMENT ON VIEW mjs.active_generations IS 'Replies not finished yet (queued or running), oldest first: who, which worker, how many tokens, age, time since the last flush, lease time left (negative: expired).';

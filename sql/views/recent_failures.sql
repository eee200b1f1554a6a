CREATE OR REPLACE VIEW mjs.recent_failures AS
SELECT m.id AS message_id, u.username, m.model, g.worker, g.attempts, g.tokens, m.error,
       m.updated_at AS failed_at
FROM mjs.messages m
JOIN mjs.users u ON u.id = m.user_id
LEFT JOIN mjs.generations g ON g.message_id = m.id
WHERE m.role = 'assistant' AND m.status = 'failed' AND m.updated_at > now() - interval '24 hours'
ORDER BY m.updated_at DESC;
COMMENT ON VIEW mjs.recent_failures IS 'Replies that failed in the last 24 hours, newest first, with the error the user saw (upstream error, timeout, worker lost).';

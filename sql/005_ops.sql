-- 005_ops: what operators look at: the responders' heartbeat table and views for
-- the questions asked in psql (and by mjsctl stats). Documented in mjs(7).
--
-- The views read only columns of mjs.generations and mjs.messages that exist
-- since 002. They never use the length of a streaming message's content: how a
-- reply's text is stored while it streams is the worker's business and may
-- change; mjs.generations.tokens and last_flush_at say how far a reply got.

-- Each mjs-api process upserts its row every few seconds and deletes it when it
-- stops. UNLOGGED: it is a heartbeat, not data; a crash of PostgreSQL empties
-- it and the responders write it again within one interval.
CREATE UNLOGGED TABLE mjs.responders (
    name         text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    listen       text NOT NULL,
    streams      integer NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE mjs.responders IS 'One row per running mjs-api process (name host:pid), upserted every 5 s with its count of open event streams; deleted when it stops. A row whose heartbeat is older than 30 s belongs to a responder that died.';
COMMENT ON COLUMN mjs.responders.streams IS 'Open GET /api/events streams the responder held at heartbeat_at.';
COMMENT ON COLUMN mjs.responders.listen IS 'The FastCGI socket (listen in mjs.conf) the responder accepts on.';

CREATE VIEW mjs.active_generations AS
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

CREATE VIEW mjs.stuck_generations AS
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

CREATE VIEW mjs.queue_depth AS
SELECT count(*) FILTER (WHERE state = 'queued') AS queued,
       count(*) FILTER (WHERE state = 'running') AS running,
       count(*) FILTER (WHERE state = 'running' AND lease_until < now()) AS expired_leases,
       now() - min(created_at) FILTER (WHERE state = 'queued') AS oldest_queued_age
FROM mjs.generations
WHERE state <> 'done';
COMMENT ON VIEW mjs.queue_depth IS 'One row: replies waiting for a worker, running, running with an expired lease (to be taken over), and how long the oldest has waited.';

CREATE VIEW mjs.recent_failures AS
SELECT m.id AS message_id, u.username, m.model, g.worker, g.attempts, g.tokens, m.error,
       m.updated_at AS failed_at
FROM mjs.messages m
JOIN mjs.users u ON u.id = m.user_id
LEFT JOIN mjs.generations g ON g.message_id = m.id
WHERE m.role = 'assistant' AND m.status = 'failed' AND m.updated_at > now() - interval '24 hours'
ORDER BY m.updated_at DESC;
COMMENT ON VIEW mjs.recent_failures IS 'Replies that failed in the last 24 hours, newest first, with the error the user saw (upstream error, timeout, worker lost).';

CREATE VIEW mjs.open_streams AS
SELECT name, host, pid, listen, streams, started_at, heartbeat_at,
       now() - heartbeat_at AS heartbeat_age,
       heartbeat_at > now() - interval '30 seconds' AS alive
FROM mjs.responders
ORDER BY name;
COMMENT ON VIEW mjs.open_streams IS 'Open event streams per responder, from the heartbeats in mjs.responders; alive is false when the responder has not been heard of for 30 s (killed without a chance to remove its row).';

CREATE VIEW mjs.events_backlog AS
SELECT u.username, u.id AS user_id, u.event_seq,
       count(e.seq) AS stored,
       min(e.seq) AS oldest_seq,
       min(e.created_at) AS oldest_at,
       max(e.created_at) AS newest_at,
       coalesce(sum(pg_column_size(e.data)), 0) AS data_bytes
FROM mjs.users u
LEFT JOIN mjs.events e ON e.user_id = u.id
GROUP BY u.id
ORDER BY count(e.seq) DESC;
COMMENT ON VIEW mjs.events_backlog IS 'Per user: the head seq, how many events are stored for replay and since when, and their size; what mjsctl events prune would shrink. Reads the whole events table: not for every minute.';

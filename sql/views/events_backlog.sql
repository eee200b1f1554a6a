CREATE OR REPLACE VIEW mjs.events_backlog AS
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

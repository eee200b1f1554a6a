CREATE OR REPLACE VIEW mjs.queue_depth AS
SELECT count(*) FILTER (WHERE state = 'queued') AS queued,
       count(*) FILTER (WHERE state = 'running') AS running,
       count(*) FILTER (WHERE state = 'running' AND lease_until < now()) AS expired_leases,
       now() - min(created_at) FILTER (WHERE state = 'queued') AS oldest_queued_age
FROM mjs.generations
WHERE state <> 'done';
COMMENT ON VIEW mjs.queue_depth IS 'One row: replies waiting for a worker, running, running with an expired lease (to be taken over), and how long the oldest has waited.';

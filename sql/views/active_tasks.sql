CREATE OR REPLACE VIEW mjs.active_tasks AS
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

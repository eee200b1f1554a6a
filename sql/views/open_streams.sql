CREATE OR REPLACE VIEW mjs.open_streams AS
SELECT name, host, pid, listen, streams, started_at, heartbeat_at,
       now() - heartbeat_at AS heartbeat_age,
       heartbeat_at > now() - interval '30 seconds' AS alive
FROM mjs.responders
ORDER BY name;
COMMENT ON VIEW mjs.open_streams IS 'Open event streams per responder, from the heartbeats in mjs.responders; alive is false when the responder has not been heard of for 30 s (killed without a chance to remove its row).';

-- The epoch new events are written in: the timeline of the server's WAL
-- insert position, the first 8 hex digits of its WAL file name. It changes
-- only when a standby is promoted or a backup is recovered to a point in
-- time, that is when the history after some commit may differ from the one
-- tabs were shown (sql/migrations/004_event_epochs.sql). Raises on a standby
-- (it writes no events).
CREATE OR REPLACE FUNCTION mjs.epoch() RETURNS integer
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::integer
$$;
COMMENT ON FUNCTION mjs.epoch() IS 'The epoch of events written now: the PostgreSQL timeline (it grows at each promotion or point-in-time recovery). Part of every SSE id, "epoch.seq".';

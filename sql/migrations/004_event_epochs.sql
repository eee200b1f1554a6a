-- 004_event_epochs: every event records the history it was written in (issue
-- 19, mjs-events(7) "Ids and epochs").
--
-- A failover to an asynchronous standby can lose the newest commits, and the
-- new primary then numbers different events with the same seqs. An event's
-- epoch is the PostgreSQL timeline its commit was written on (mjs.epoch()),
-- and its SSE id is "epoch.seq": a tab that asks to resume after E.N resumes
-- only when event N of its user still carries epoch E; otherwise it is sent
-- `reset`. Timelines only grow: each promotion (and each point-in-time
-- recovery) starts a new one, so a seq reused in another history never
-- carries the same epoch.
--
-- The events stored so far get the timeline the server is on now: the tabs
-- open before the upgrade hold bare seqs, which mean the current epoch, and
-- resume as before. It is a constant default, which PostgreSQL stores once
-- instead of rewriting the table. Then the default becomes the timeline of
-- each insert (mjs.epoch()'s expression: that function is defined after the
-- migrations run), for the writer that predates the column: the old
-- mjs.emit_batch still runs between this migration and the definitions
-- `mjsctl migrate` applies next, and mjs-api and mjs-worker write events
-- meanwhile. The new mjs.emit_batch says the epoch itself.
DO $$
BEGIN
    EXECUTE format('ALTER TABLE mjs.events ADD COLUMN epoch integer NOT NULL DEFAULT %s',
                   ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::integer);
END
$$;
ALTER TABLE mjs.events ALTER COLUMN epoch
    SET DEFAULT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::integer;
COMMENT ON COLUMN mjs.events.epoch IS 'The PostgreSQL timeline the event was written on (mjs.epoch()); its SSE id is "epoch.seq", and a tab resumes after E.N only while event N still has epoch E.';
COMMENT ON TABLE mjs.events IS 'Every change a user can see, numbered per user 1, 2, 3... without gaps in commit order. The SSE id of an event is "epoch.seq"; reconnecting tabs replay from here.';

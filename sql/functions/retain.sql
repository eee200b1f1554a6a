-- Retention: the server keeps itself bounded (mjs(7), RETENTION).
--
-- At 100 replies of 20 tokens/s, mjs.events grows by ~2,000 rows a second,
-- nearly all message.delta. A finished reply's deltas say nothing its final
-- message.updated does not: a tab that was away reloads the message whole.
-- So the workers (one at a time: an advisory lock) delete
--   1. every message.delta older than delta_retention whose reply is no
--      longer generating (its job is done, or gone with its message), in
--      batches, every few seconds while there is a backlog; the check reads the
--      open jobs only (the planner hashes them once), never all messages;
--   2. every event older than event_retention that is not among its user's
--      last event_keep (what mjsctl events prune does by hand), and finished
--      generations (the job rows, not the messages) as old, less often. Kept
--      short by default: a btree page of (user_id, seq) comes back only once
--      every event on it is gone.
-- A tab whose Last-Event-ID falls into deleted history gets `reset` and reloads
-- over REST, as after a prune: the hub resets on any hole in the seqs.
--
-- Finding old deltas without an index of their own: the scan of events_created
-- starts at mjs.retention.delta_since, the point before which everything
-- deletable is deleted. It moves up to the end of each scan, but never past the
-- start of the oldest reply still running: that reply's deltas, skipped now,
-- are deleted by a later run.
--
-- One run of retention, its own short transaction. Returns what it deleted,
-- and locked = false when another worker was running it (nothing done).
-- p_general: also step 2 (the caller does it every few minutes).
CREATE OR REPLACE FUNCTION mjs.retain(p_delta_age interval, p_event_age interval, p_keep integer, p_batch integer,
                           p_general boolean,
                           OUT locked boolean, OUT deltas bigint, OUT events bigint, OUT gens bigint,
                           OUT more boolean)
LANGUAGE plpgsql AS $$
DECLARE
    since   timestamptz;
    upto    timestamptz := now() - p_delta_age;
    running timestamptz;
    last    timestamptz;
    scanned bigint;
BEGIN
    deltas := 0; events := 0; gens := 0; more := false;
    locked := pg_try_advisory_xact_lock(hashtext('mjs.retain'));
    IF NOT locked THEN
        RETURN;
    END IF;
    SELECT delta_since INTO since FROM mjs.retention WHERE id = 1 FOR UPDATE;
    -- 1. deltas of finished replies, oldest first, from where the last run stopped
    WITH c AS (
        SELECT e.ctid AS row_id, e.created_at, e.type = 'message.delta' AND NOT EXISTS (
                   SELECT 1 FROM mjs.generations g WHERE g.message_id = (e.data ->> 'message_id')::uuid
                     AND g.state <> 'done') AS doomed
        FROM mjs.events e
        WHERE e.created_at < upto AND (since IS NULL OR e.created_at >= since)
        ORDER BY e.created_at LIMIT p_batch * 4),
    d AS (
        DELETE FROM mjs.events WHERE ctid IN (SELECT row_id FROM c WHERE doomed) RETURNING 1)
    SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM c), (SELECT max(created_at) FROM c)
        INTO deltas, scanned, last;
    -- the scan stopped at its limit: go on from there next time
    IF scanned >= p_batch * 4 THEN
        more := true;
        -- rows of one transaction share created_at: never stop short of progress
        upto := CASE WHEN since IS NOT NULL AND last <= since THEN last + interval '1 microsecond' ELSE last END;
    END IF;
    SELECT min(started_at) INTO running FROM mjs.generations WHERE state = 'running';
    UPDATE mjs.retention SET delta_since = least(upto, coalesce(running, upto)), last_run_at = now(),
           deltas_deleted = deltas_deleted + deltas
        WHERE id = 1;
    -- 2. old events beyond each user's last p_keep, and old finished jobs
    IF p_general THEN
        WITH d AS (
            DELETE FROM mjs.events WHERE ctid = ANY (ARRAY(
                SELECT e.ctid FROM mjs.events e JOIN mjs.users u ON u.id = e.user_id
                WHERE e.created_at < now() - p_event_age AND e.seq <= u.event_seq - p_keep
                LIMIT p_batch)) RETURNING 1)
        SELECT count(*) INTO events FROM d;
        WITH d AS (
            DELETE FROM mjs.generations WHERE message_id = ANY (ARRAY(
                SELECT message_id FROM mjs.generations
                WHERE state = 'done' AND finished_at < now() - p_event_age LIMIT p_batch)) RETURNING 1)
        SELECT count(*) INTO gens FROM d;
        more := more OR events >= p_batch OR gens >= p_batch;
        UPDATE mjs.retention SET last_general_at = now(), events_deleted = events_deleted + events,
               gens_deleted = gens_deleted + gens
            WHERE id = 1;
    END IF;
END
$$;
COMMENT ON FUNCTION mjs.retain(interval, interval, integer, integer, boolean) IS 'Workers: one bounded run of retention (see sql/functions/retain.sql): deltas of finished replies older than p_delta_age, and with p_general events older than p_event_age beyond each user''s last p_keep and finished jobs as old. One worker at a time (advisory lock); more = a batch was full.';

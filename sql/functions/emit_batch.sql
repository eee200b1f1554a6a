-- The one way an event is written: every change a user can see calls this
-- (directly, or through mjs.emit) in the transaction that makes the change.
-- For each user in p it takes the next seqs under the user's row lock (held
-- until commit, so seqs are gapless in commit order), numbering that user's
-- events in the order given; stores them; and notifies mjs_events once per
-- event, in the order given. The caller holds the users' locks already
-- (mjs.lock_user first, several users in id order, the lock-order rule of
-- sql/README.md); otherwise the UPDATE below takes them in no set order.
--
-- The notification payload is mjs.event_payload()'s. One event (every REST
-- write) takes three plain statements: the set-based statement's plan costs
-- 0.4 ms to make per call, or 0.1 ms more than these to run as a generic plan.
--
-- Every event records the epoch it is written in (mjs.epoch(), the part of
-- its SSE id before the dot).
--
-- Returns the seqs in the order of p. Raises when a user does not exist.
CREATE OR REPLACE FUNCTION mjs.emit_batch(p mjs.event_in[]) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    e integer := mjs.epoch();
BEGIN
    IF cardinality(p) = 1 THEN
        UPDATE mjs.users SET event_seq = event_seq + 1 WHERE id = p[1].user_id RETURNING event_seq INTO n;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'mjs.emit_batch: no such user %', p[1].user_id;
        END IF;
        INSERT INTO mjs.events (user_id, seq, type, data, epoch) VALUES (p[1].user_id, n, p[1].type, p[1].data, e);
        PERFORM pg_notify('mjs_events', mjs.event_payload(p[1].user_id, n, p[1].type, p[1].data));
        RETURN NEXT n;
        RETURN;
    END IF;
    RETURN QUERY
    WITH ev AS (
        SELECT e.user_id, e.type, e.data, e.ord
        FROM unnest(p) WITH ORDINALITY AS e(user_id, type, data, ord)),
    per_user AS (
        SELECT ev.user_id, count(*) AS events FROM ev GROUP BY ev.user_id),
    seqs AS (
        UPDATE mjs.users u SET event_seq = u.event_seq + per_user.events
        FROM per_user WHERE u.id = per_user.user_id
        RETURNING u.id, u.event_seq - per_user.events AS base),
    numbered AS (
        SELECT ev.user_id, ev.type, ev.data, ev.ord,
               seqs.base + row_number() OVER (PARTITION BY ev.user_id ORDER BY ev.ord) AS seq
        FROM ev JOIN seqs ON seqs.id = ev.user_id),
    ins AS (
        INSERT INTO mjs.events (user_id, seq, type, data, epoch)
        SELECT x.user_id, x.seq, x.type, x.data, e FROM numbered x),
    ordered AS (
        SELECT x.user_id, x.seq, x.type, x.data FROM numbered x ORDER BY x.ord OFFSET 0)
    SELECT o.seq
    FROM ordered o
    CROSS JOIN LATERAL pg_notify('mjs_events', mjs.event_payload(o.user_id, o.seq, o.type, o.data)) AS sent;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> coalesce(cardinality(p), 0) THEN
        RAISE EXCEPTION 'mjs.emit_batch: no such user among %', ARRAY(SELECT DISTINCT e.user_id FROM unnest(p) e);
    END IF;
END
$$;
COMMENT ON FUNCTION mjs.emit_batch(mjs.event_in[]) IS 'Appends events (next gapless seqs of each user, in the order given), stores them and NOTIFYs mjs_events for each; returns their seqs in order. Call it in the transaction that makes the change, holding the users'' locks. The only writer of mjs.events and of the notification format.';

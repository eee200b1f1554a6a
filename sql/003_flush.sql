-- 003_flush: the worker's per-tick flush, set-based. mjs.flush_generations() of
-- 002 worked row by row in PL/pgSQL (~0.1 ms per generation per flush, plus the
-- text it read whole several times); this one runs a few statements for the
-- whole batch, whatever its size (docs/BENCHMARKS.md, "What limits it").
--
-- Same contract as 002: p is a JSON array of
-- {"id", "offset", "text", "status", "error", "tokens"}; returns the ids whose
-- message no longer exists. Same rules:
-- - users are locked in id order before any other row (so no deadlock with REST
--   writes, which lock their user first, nor with another worker's flush);
-- - text is appended only when the content is still offset characters long, so a
--   flush re-sent after a lost commit never doubles text;
-- - statuses only move forward: created, pending, streaming, then a final one;
-- - events per message in this order: message.updated (pending),
--   message.updated (streaming), message.delta, message.updated (final), each
--   with the user's next seq and one pg_notify in the format of mjs.emit().

-- One generation of a flush, as planned after the users are locked.
CREATE TYPE mjs.flush_item AS (
    id              uuid,
    user_id         uuid,           -- NULL: the message is gone
    conversation_id uuid,
    old_status      text,
    new_status      text,
    old_chars       integer,        -- content length before this flush
    text            text,           -- appended text, NULL when not applied
    error           text,
    tokens          integer,
    pending_json    json,           -- message.updated events, NULL when not emitted
    streaming_json  json
);
COMMENT ON TYPE mjs.flush_item IS 'Internal to mjs.flush_generations(): one job of a flush and what it changes.';

CREATE OR REPLACE FUNCTION mjs.flush_generations(p json) RETURNS SETOF uuid
LANGUAGE plpgsql AS $$
DECLARE
    b  mjs.flush_item[];
    t  timestamptz := now();
    n  bigint;
BEGIN
    -- 1. Every user of the batch, in id order (ORDER BY runs before the locking).
    PERFORM 1 FROM mjs.users u
        WHERE u.id IN (SELECT m.user_id FROM json_to_recordset(p) AS x(id uuid)
                       JOIN mjs.messages m ON m.id = x.id)
        ORDER BY u.id FOR NO KEY UPDATE;

    -- 2. The plan, read after the locks: no writer of these messages can run now.
    WITH x AS (
        SELECT x.id, x."offset", x.text, x.status, x.error, x.tokens, m.user_id, m.conversation_id,
               m.status AS old_status, char_length(m.content) AS old_chars
        FROM json_to_recordset(p) AS x(id uuid, "offset" integer, text text, status text, error text,
                                       tokens integer)
        LEFT JOIN mjs.messages m ON m.id = x.id),
    s1 AS (
        SELECT x.*, x.status = 'pending' AND x.old_status = 'created' AS do_pending,
               coalesce(x.text, '') <> '' AND x.old_chars = x."offset" AS do_text
        FROM x),
    s2 AS (
        SELECT s1.*, CASE WHEN do_pending THEN 'pending' ELSE old_status END AS st1 FROM s1),
    s3 AS (
        SELECT s2.*, do_text AND st1 IN ('created', 'pending') AS do_streaming FROM s2),
    s4 AS (
        SELECT s3.*, CASE WHEN do_streaming THEN 'streaming' ELSE st1 END AS st2 FROM s3)
    SELECT array_agg(ROW(
               s4.id, s4.user_id, s4.conversation_id, s4.old_status,
               CASE WHEN s4.status IN ('completed', 'stopped', 'failed')
                         AND s4.st2 IN ('created', 'pending', 'streaming') THEN s4.status ELSE s4.st2 END,
               s4.old_chars, CASE WHEN s4.do_text THEN s4.text END, s4.error, s4.tokens,
               CASE WHEN s4.do_pending THEN (SELECT mjs.message_json(json_populate_record(m,
                   json_build_object('status', 'pending', 'updated_at', t))) FROM mjs.messages m
                   WHERE m.id = s4.id) END,
               CASE WHEN s4.do_streaming THEN (SELECT mjs.message_json(json_populate_record(m,
                   json_build_object('status', 'streaming', 'updated_at', t))) FROM mjs.messages m
                   WHERE m.id = s4.id) END
           )::mjs.flush_item ORDER BY s4.user_id, s4.id)
        INTO b FROM s4;

    RETURN QUERY SELECT i.id FROM unnest(b) i WHERE i.user_id IS NULL;

    -- 3. The messages: text and status, one statement.
    UPDATE mjs.messages m
        SET content = CASE WHEN i.text IS NULL THEN m.content ELSE m.content || i.text END,
            status = i.new_status,
            error = CASE WHEN i.new_status IN ('completed', 'stopped', 'failed') THEN i.error ELSE m.error END,
            updated_at = t
        FROM unnest(b) i
        WHERE m.id = i.id AND i.user_id IS NOT NULL AND (i.text IS NOT NULL OR i.new_status <> i.old_status);

    -- 4. The jobs: only when something about them changed.
    UPDATE mjs.generations g
        SET tokens = coalesce(i.tokens, g.tokens), last_flush_at = t,
            first_token_at = CASE WHEN i.streaming_json IS NOT NULL THEN t ELSE g.first_token_at END,
            state = CASE WHEN i.new_status IN ('completed', 'stopped', 'failed') THEN 'done' ELSE g.state END,
            finished_at = CASE WHEN i.new_status IN ('completed', 'stopped', 'failed') THEN t END
        FROM unnest(b) i
        WHERE g.message_id = i.id AND i.user_id IS NOT NULL
          AND (i.new_status <> i.old_status OR i.new_status IN ('completed', 'stopped', 'failed'));

    -- 5. The events: numbered per user after its event_seq, stored, notified in seq order.
    WITH ev AS (
        SELECT i.user_id, i.id, k.ord, k.type, k.data
        FROM unnest(b) i
        CROSS JOIN LATERAL (VALUES
            (1, 'message.updated', i.pending_json),
            (2, 'message.updated', i.streaming_json),
            (3, 'message.delta', CASE WHEN i.text IS NOT NULL THEN
                (SELECT row_to_json(d) FROM (SELECT i.id AS message_id, i.conversation_id,
                                                    i.old_chars AS "offset", i.text AS text) d) END),
            (4, 'message.updated', CASE WHEN i.new_status <> i.old_status
                                         AND i.new_status IN ('completed', 'stopped', 'failed') THEN
                (SELECT mjs.message_json(m) FROM mjs.messages m WHERE m.id = i.id) END)
        ) AS k(ord, type, data)
        WHERE i.user_id IS NOT NULL AND k.data IS NOT NULL),
    per_user AS (
        SELECT ev.user_id, count(*) AS events FROM ev GROUP BY ev.user_id),
    seqs AS (
        UPDATE mjs.users u SET event_seq = u.event_seq + per_user.events
        FROM per_user WHERE u.id = per_user.user_id
        RETURNING u.id, u.event_seq - per_user.events AS base),
    ins AS (
        INSERT INTO mjs.events (user_id, seq, type, data, created_at)
        SELECT ev.user_id, seqs.base + row_number() OVER (PARTITION BY ev.user_id ORDER BY ev.id, ev.ord),
               ev.type, ev.data, t
        FROM ev JOIN seqs ON seqs.id = ev.user_id
        RETURNING user_id, seq, type, data),
    ordered AS (
        SELECT ins.user_id::text || ' ' || ins.seq || ' ' || ins.type || ' ' AS head, ins.data::text AS data
        FROM ins ORDER BY ins.user_id, ins.seq OFFSET 0)
    SELECT count(pg_notify('mjs_events',
                           CASE WHEN octet_length(head) + octet_length(data) < 7900 THEN head || data
                                ELSE head END))
        INTO n FROM ordered;
END
$$;
COMMENT ON FUNCTION mjs.flush_generations(json) IS 'Worker side: one transaction per tick carrying every job with new text or a new status; set-based (003).';

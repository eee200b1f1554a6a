-- 003_flush: the worker's per-tick flush, made cheap and flat.
--
-- 002's mjs.flush_generations() worked row by row in PL/pgSQL (~0.1 ms per
-- generation per flush) and rewrote the whole growing messages.content on every
-- flush (a TOAST rewrite: a reply's cost per flush grew with its length, its
-- total cost quadratically; docs/BENCHMARKS.md, "What limits it"). Here:
--
-- - Streaming text goes to append-only rows, mjs.message_chunks, one per flush
--   and message; messages.content is rewritten once, when the message reaches a
--   final status (completed, stopped, failed), in the same transaction that
--   deletes its chunks. Chunks exist only while a message is `streaming`.
--   Every reader sees content || chunks through mjs.message_text() (used by
--   mjs.message_json(), so by GET messages and by every event) and the length
--   through mjs.message_chars() (the claim's recovery rule, the flush's offset
--   check).
-- - The flush is set-based: a few statements for the whole batch, whatever its
--   size. mjs.messages and mjs.generations are written only when a status moves.
--
-- Same contract as 002: p is a JSON array of
-- {"id", "offset", "text", "status", "error", "tokens"}; returns the ids whose
-- message no longer exists. Same rules:
-- - users are locked in id order before any other row (so no deadlock with REST
--   writes, which lock their user first, nor with another worker's flush);
-- - text is appended only when the content is still offset characters long, so a
--   flush re-sent after a lost commit never doubles text; and only to a message
--   that is not final yet;
-- - statuses only move forward: created, pending, streaming, then a final one;
-- - events per message in this order: message.updated (pending),
--   message.updated (streaming), message.delta, message.updated (final), each
--   with the user's next seq and one pg_notify in the format of mjs.emit().

CREATE TABLE mjs.message_chunks (
    message_id uuid NOT NULL,
    "offset"   integer NOT NULL,
    text       text NOT NULL,
    PRIMARY KEY (message_id, "offset")
);
COMMENT ON TABLE mjs.message_chunks IS 'Text of a streaming message not yet folded into messages.content, one row per worker flush. Read it through mjs.message_text().';
COMMENT ON COLUMN mjs.message_chunks."offset" IS 'Characters of the message before this chunk (the offset of its message.delta event).';

-- No foreign key: its check would lock the message row on every chunk insert.
-- Chunks go with their message through this trigger instead (deletes of
-- messages, conversations and users all reach it).
CREATE FUNCTION mjs.message_chunks_gone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM mjs.message_chunks c USING gone WHERE c.message_id = gone.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_chunks_gone AFTER DELETE ON mjs.messages
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION mjs.message_chunks_gone();
COMMENT ON FUNCTION mjs.message_chunks_gone() IS 'Deletes the chunks of deleted messages.';

CREATE FUNCTION mjs.message_text(m mjs.messages) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN m.status = 'streaming'
              THEN m.content || coalesce((SELECT string_agg(c.text, '' ORDER BY c."offset")
                                          FROM mjs.message_chunks c WHERE c.message_id = m.id), '')
              ELSE m.content END
$$;
COMMENT ON FUNCTION mjs.message_text(mjs.messages) IS 'A message''s text: content plus the chunks of a streaming message.';

CREATE FUNCTION mjs.message_chars(m mjs.messages) RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN m.status = 'streaming'
              THEN coalesce((SELECT c."offset" + char_length(c.text) FROM mjs.message_chunks c
                             WHERE c.message_id = m.id ORDER BY c."offset" DESC LIMIT 1),
                            char_length(m.content))
              ELSE char_length(m.content) END
$$;
COMMENT ON FUNCTION mjs.message_chars(mjs.messages) IS 'Length in characters of mjs.message_text(m), from the last chunk when there is one.';

CREATE OR REPLACE FUNCTION mjs.message_json(m mjs.messages) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT row_to_json(r) FROM (SELECT m.id, m.conversation_id, m.role, mjs.message_text(m) AS content,
      m.status, m.error, m.model, mjs.rfc3339(m.created_at) AS created_at,
      mjs.rfc3339(m.updated_at) AS updated_at) r
$$;

-- As in 002, with the length of content plus chunks for the recovery rule.
CREATE OR REPLACE FUNCTION mjs.claim_generations(p_worker text, p_limit integer, p_lease interval)
RETURNS TABLE (message_id uuid, user_id uuid, conversation_id uuid, model text, attempts integer,
               status text, content_chars integer, stop_requested boolean, recovered boolean)
LANGUAGE sql AS $$
  WITH c AS (
      SELECT g.message_id, g.state = 'running' AS recovered FROM mjs.generations g
      WHERE g.state = 'queued' OR (g.state = 'running' AND g.lease_until < now())
      ORDER BY g.created_at LIMIT p_limit FOR UPDATE SKIP LOCKED),
  u AS (
      UPDATE mjs.generations g SET state = 'running', worker = p_worker, lease_until = now() + p_lease,
             attempts = g.attempts + 1, started_at = coalesce(g.started_at, now())
      FROM c WHERE g.message_id = c.message_id RETURNING g.*, c.recovered)
  SELECT u.message_id, u.user_id, m.conversation_id, u.model, u.attempts, m.status,
         mjs.message_chars(m), u.stop_requested, u.recovered
  FROM u JOIN mjs.messages m ON m.id = u.message_id
$$;

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
    b      mjs.flush_item[];
    moved  mjs.flush_item[];
    final_ids  uuid[];
    final_json json[];
    t      timestamptz := now();
    n      bigint;
BEGIN
    -- 1. Every user of the batch, in id order (ORDER BY runs before the locking).
    PERFORM 1 FROM mjs.users u
        WHERE u.id IN (SELECT m.user_id FROM json_to_recordset(p) AS x(id uuid)
                       JOIN mjs.messages m ON m.id = x.id)
        ORDER BY u.id FOR NO KEY UPDATE;

    -- 2. The plan, read after the locks: no writer of these messages can run now.
    WITH x AS (
        SELECT x.id, x."offset", x.text, x.status, x.error, x.tokens, m.user_id, m.conversation_id,
               m.status AS old_status,
               -- mjs.message_chars(m), inlined: as a function it runs once per row
               CASE WHEN m.status = 'streaming' THEN coalesce(lc.chars, char_length(m.content))
                    ELSE char_length(m.content) END AS old_chars
        FROM json_to_recordset(p) AS x(id uuid, "offset" integer, text text, status text, error text,
                                       tokens integer)
        LEFT JOIN mjs.messages m ON m.id = x.id
        LEFT JOIN LATERAL (
            SELECT c."offset" + char_length(c.text) AS chars FROM mjs.message_chunks c
            WHERE c.message_id = x.id ORDER BY c."offset" DESC LIMIT 1) lc ON true),
    s1 AS (
        SELECT x.*, x.status = 'pending' AND x.old_status = 'created' AS do_pending,
               coalesce(x.text, '') <> '' AND x.old_chars = x."offset"
                   AND x.old_status IN ('created', 'pending', 'streaming') AS do_text
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

    -- 3. The text: one chunk per message, never a rewrite of the content.
    INSERT INTO mjs.message_chunks (message_id, "offset", text)
        SELECT i.id, i.old_chars, i.text FROM unnest(b) i WHERE i.text IS NOT NULL;

    -- 4. Status moves (a few per reply, so most flushes skip this): a final status
    -- folds the chunks into the content, once, and ends the job.
    SELECT coalesce(array_agg(i ORDER BY i.user_id, i.id), '{}') INTO moved FROM unnest(b) i
        WHERE i.user_id IS NOT NULL
          AND (i.new_status <> i.old_status OR i.new_status IN ('completed', 'stopped', 'failed'));
    IF cardinality(moved) > 0 THEN
        WITH u AS (
        UPDATE mjs.messages m
            SET status = i.new_status,
                content = CASE WHEN f.text IS NULL THEN m.content ELSE m.content || f.text END,
                error = CASE WHEN i.new_status IN ('completed', 'stopped', 'failed') THEN i.error
                             ELSE m.error END,
                updated_at = t
            FROM unnest(moved) i
            LEFT JOIN LATERAL (
                SELECT string_agg(c.text, '' ORDER BY c."offset") AS text FROM mjs.message_chunks c
                WHERE c.message_id = i.id AND i.new_status IN ('completed', 'stopped', 'failed')) f ON true
            WHERE m.id = i.id AND i.new_status <> i.old_status
            RETURNING m.id, CASE WHEN m.status IN ('completed', 'stopped', 'failed')
                                 THEN mjs.message_json(m) END AS data)
        SELECT array_agg(u.id), array_agg(u.data) INTO final_ids, final_json FROM u
            WHERE u.data IS NOT NULL;
        DELETE FROM mjs.message_chunks c
            WHERE c.message_id = ANY (ARRAY(SELECT i.id FROM unnest(moved) i
                                            WHERE i.new_status IN ('completed', 'stopped', 'failed')));
        UPDATE mjs.generations g
            SET tokens = coalesce(i.tokens, g.tokens), last_flush_at = t,
                first_token_at = CASE WHEN i.streaming_json IS NOT NULL THEN t ELSE g.first_token_at END,
                state = CASE WHEN i.new_status IN ('completed', 'stopped', 'failed') THEN 'done' ELSE g.state END,
                finished_at = CASE WHEN i.new_status IN ('completed', 'stopped', 'failed') THEN t END
            FROM unnest(moved) i
            WHERE g.message_id = i.id;
    END IF;

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
                final_json[array_position(final_ids, i.id)] END)
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
-- Its statements are short; JIT compiling them (the fold's cost estimate can pass
-- jit_above_cost) costs more than running them.
ALTER FUNCTION mjs.flush_generations(json) SET jit = off;
COMMENT ON FUNCTION mjs.flush_generations(json) IS 'Worker side: one transaction per tick carrying every job with new text or a new status; set-based (003).';

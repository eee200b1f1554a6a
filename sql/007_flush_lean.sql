-- 007_flush_lean: a cheaper flush, so tokens reach the tabs sooner (issue 3's
-- benchmark: 250 replies at 20 tokens/s, 1,000 tabs). Measured on the 2-core
-- development machine with 250 replies in one flush (docs/BENCHMARKS.md):
--
-- - mjs.message_json() was a SQL function with a FROM clause, so PostgreSQL
--   could not inline it and started an executor for every call: 0.16 ms per
--   message, 40 ms for the 250 pending and 250 streaming events of a burst of
--   new replies. As one row_to_json() of a composite it is inlined: 6 ms for
--   the same 250, with byte-identical output.
-- - A final status folded the message's chunks (string_agg) and deleted them in
--   the notifying transaction: 675 ms for 250 replies of 600 chunks finishing
--   in one tick, and every token of that tick waited for it. Now the worker
--   sends the whole text it streamed with the final status ("content"; used
--   only when its length matches what the database holds, else the chunks are
--   folded as before), and the chunks of finished messages are deleted later,
--   many messages at once, on a second connection of the worker
--   (mjs.drop_chunks): a reply's chunks lie one per page across the table (a
--   flush inserts one chunk for every running reply), so deleting one reply's
--   600 chunks dirtied 600 pages inside the flush. mjs.message_text() already
--   ignores chunks unless the message is streaming, so leftover chunks are
--   invisible; mjs.sweep_chunks() removes those a dead worker left behind.
-- - The foreign key of mjs.events on mjs.users ran one referential check per
--   inserted event (4.5 of the 18 ms of a 250-reply flush). Every event is
--   inserted under its user's row lock (mjs.emit, the flush), and deleting a
--   user takes that lock, so no event can outlive its user; the cascade is
--   now a statement trigger, as for mjs.message_chunks.

-- ------------------------------------------------------------------ JSON

CREATE TYPE mjs.message_out AS (
    id uuid, conversation_id uuid, role text, content text, status text, error text, model text,
    created_at text, updated_at text);
COMMENT ON TYPE mjs.message_out IS 'The fields of the API''s message JSON, in order (mjs.message_json()).';

CREATE OR REPLACE FUNCTION mjs.message_json(m mjs.messages) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT row_to_json(ROW(m.id, m.conversation_id, m.role, mjs.message_text(m), m.status, m.error, m.model,
                         mjs.rfc3339(m.created_at), mjs.rfc3339(m.updated_at))::mjs.message_out)
$$;

CREATE TYPE mjs.conversation_out AS (id uuid, title text, created_at text, updated_at text);
COMMENT ON TYPE mjs.conversation_out IS 'The fields of the API''s conversation JSON, in order (mjs.conversation_json()).';

CREATE OR REPLACE FUNCTION mjs.conversation_json(c mjs.conversations) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT row_to_json(ROW(c.id, c.title, mjs.rfc3339(c.created_at),
                         mjs.rfc3339(c.updated_at))::mjs.conversation_out)
$$;

-- ------------------------------------------------------------------ events

ALTER TABLE mjs.events DROP CONSTRAINT events_user_id_fkey;

-- Event data is stored uncompressed: only the big ones (a finished reply's
-- message.updated carries its whole text) leave the row, and each is read back
-- by every responder right away; pglz cost a compression and a decompression
-- per reader for little space in a table that is pruned.
ALTER TABLE mjs.events ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE FUNCTION mjs.user_events_gone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM mjs.events e USING gone WHERE e.user_id = gone.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_events_gone AFTER DELETE ON mjs.users
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION mjs.user_events_gone();
COMMENT ON FUNCTION mjs.user_events_gone() IS 'Deletes the events of deleted users (in place of a foreign key: every event is written under its user''s row lock).';

-- ------------------------------------------------------------------ chunks

COMMENT ON TABLE mjs.message_chunks IS 'Text of a streaming message not yet folded into messages.content, one row per worker flush. Read it through mjs.message_text(), which ignores the chunks of a message that is no longer streaming (the worker deletes those in batches with mjs.drop_chunks(); mjs.sweep_chunks() the rest).';

CREATE FUNCTION mjs.drop_chunks(p_ids uuid[]) RETURNS bigint
LANGUAGE sql AS $$
  WITH d AS (
      DELETE FROM mjs.message_chunks c
      WHERE c.message_id = ANY (ARRAY(
          SELECT d.id FROM unnest(p_ids) d(id) LEFT JOIN mjs.messages m ON m.id = d.id
          WHERE m.status IS DISTINCT FROM 'streaming'))
      RETURNING 1)
  SELECT count(*) FROM d
$$;
COMMENT ON FUNCTION mjs.drop_chunks(uuid[]) IS 'Deletes the chunks of the given messages unless one is (impossibly) still streaming; returns how many. The worker calls it with the messages whose final status it wrote.';

CREATE FUNCTION mjs.sweep_chunks() RETURNS bigint
LANGUAGE sql AS $$
  WITH d AS (
      DELETE FROM mjs.message_chunks c
      WHERE NOT EXISTS (SELECT 1 FROM mjs.messages m WHERE m.id = c.message_id AND m.status = 'streaming')
      RETURNING 1)
  SELECT count(*) FROM d
$$;
COMMENT ON FUNCTION mjs.sweep_chunks() IS 'Deletes the chunks of messages that are no longer streaming (left by a worker that stopped before deleting them); returns how many. The worker runs it when it connects.';

-- ------------------------------------------------------------------ the flush

-- One job as the worker sends it (the JSON array of mjs.flush_generations).
CREATE TYPE mjs.flush_in AS (
    id       uuid,
    user_id  uuid,          -- the job's user: locked before anything else
    "offset" integer,       -- characters of the message the worker knows are stored
    text     text,          -- new text to append at offset
    status   text,          -- new status, or NULL
    error    text,
    tokens   integer,
    content  text           -- with a final status: the whole text, when the worker has it
);
COMMENT ON TYPE mjs.flush_in IS 'Input of mjs.flush_generations(): one job of the worker''s flush.';

ALTER TYPE mjs.flush_item ADD ATTRIBUTE content text;
COMMENT ON TYPE mjs.flush_item IS 'Internal to mjs.flush_generations(): one job of a flush and what it changes. content: the final text to store, NULL to fold the chunks.';

-- Same contract and rules as 003 (users locked in id order first; text
-- appended only at the stored length and only to a message that is not final;
-- statuses only move forward; events per message: pending, streaming, delta,
-- final), with user_id and content in the jobs. Returns the ids whose message
-- no longer exists.
CREATE OR REPLACE FUNCTION mjs.flush_generations(p json) RETURNS SETOF uuid
LANGUAGE plpgsql AS $$
DECLARE
    jobs   mjs.flush_in[];
    b      mjs.flush_item[];
    moved  mjs.flush_item[];
    final_ids  uuid[];
    final_json json[];
    t      timestamptz := now();
    n      bigint;
BEGIN
    SELECT coalesce(array_agg(x), '{}') INTO jobs FROM json_populate_recordset(NULL::mjs.flush_in, p) x;

    -- 1. Every user of the batch, in id order (ORDER BY runs before the locking).
    PERFORM 1 FROM mjs.users u
        WHERE u.id = ANY (ARRAY(SELECT DISTINCT j.user_id FROM unnest(jobs) j))
        ORDER BY u.id FOR NO KEY UPDATE;

    -- 2. The plan, read after the locks: no writer of these messages can run now.
    -- A message of another user than the job's counts as gone.
    WITH x AS (
        SELECT j.id, j."offset", j.text, j.status, j.error, j.tokens, j.content, m.user_id, m.conversation_id,
               m.status AS old_status,
               -- mjs.message_chars(m), inlined: as a function it runs once per row
               CASE WHEN m.status = 'streaming' THEN coalesce(lc.chars, char_length(m.content))
                    ELSE char_length(m.content) END AS old_chars
        FROM unnest(jobs) j
        LEFT JOIN mjs.messages m ON m.id = j.id AND m.user_id = j.user_id
        LEFT JOIN LATERAL (
            SELECT c."offset" + char_length(c.text) AS chars FROM mjs.message_chunks c
            WHERE c.message_id = j.id ORDER BY c."offset" DESC LIMIT 1) lc ON m.status = 'streaming'),
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
        SELECT s3.*, CASE WHEN do_streaming THEN 'streaming' ELSE st1 END AS st2 FROM s3),
    s5 AS (
        SELECT s4.*, CASE WHEN s4.status IN ('completed', 'stopped', 'failed')
                               AND s4.st2 IN ('created', 'pending', 'streaming') THEN s4.status ELSE s4.st2 END
                     AS new_status
        FROM s4)
    SELECT array_agg(ROW(
               s5.id, s5.user_id, s5.conversation_id, s5.old_status, s5.new_status,
               s5.old_chars, CASE WHEN s5.do_text THEN s5.text END, s5.error, s5.tokens,
               CASE WHEN s5.do_pending THEN (SELECT mjs.message_json(json_populate_record(m,
                   json_build_object('status', 'pending', 'updated_at', t))) FROM mjs.messages m
                   WHERE m.id = s5.id) END,
               CASE WHEN s5.do_streaming THEN (SELECT mjs.message_json(json_populate_record(m,
                   json_build_object('status', 'streaming', 'updated_at', t))) FROM mjs.messages m
                   WHERE m.id = s5.id) END,
               -- the worker's whole text, when it is the stored text plus this flush's
               CASE WHEN s5.new_status <> s5.old_status AND s5.new_status IN ('completed', 'stopped', 'failed')
                         AND char_length(s5.content) = s5.old_chars
                             + CASE WHEN s5.do_text THEN char_length(s5.text) ELSE 0 END
                    THEN s5.content END
           )::mjs.flush_item ORDER BY s5.user_id, s5.id)
        INTO b FROM s5;

    RETURN QUERY SELECT i.id FROM unnest(b) i WHERE i.user_id IS NULL;

    -- 3. The text: one chunk per message, never a rewrite of the content; none
    -- when the final status stores the whole text anyway.
    INSERT INTO mjs.message_chunks (message_id, "offset", text)
        SELECT i.id, i.old_chars, i.text FROM unnest(b) i WHERE i.text IS NOT NULL AND i.content IS NULL;

    -- 4. Status moves (a few per reply, so most flushes skip this): a final status
    -- stores the whole text (the worker's, or the chunks folded) and ends the job.
    SELECT coalesce(array_agg(i ORDER BY i.user_id, i.id), '{}') INTO moved FROM unnest(b) i
        WHERE i.user_id IS NOT NULL
          AND (i.new_status <> i.old_status OR i.new_status IN ('completed', 'stopped', 'failed'));
    IF cardinality(moved) > 0 THEN
        WITH u AS (
        UPDATE mjs.messages m
            SET status = i.new_status,
                content = CASE WHEN i.content IS NOT NULL THEN i.content
                               WHEN f.text IS NULL THEN m.content ELSE m.content || f.text END,
                error = CASE WHEN i.new_status IN ('completed', 'stopped', 'failed') THEN i.error
                             ELSE m.error END,
                updated_at = t
            FROM unnest(moved) i
            -- the condition inside, so that no chunk is read when it is false
            LEFT JOIN LATERAL (
                SELECT string_agg(c.text, '' ORDER BY c."offset") AS text FROM mjs.message_chunks c
                WHERE c.message_id = i.id AND i.new_status IN ('completed', 'stopped', 'failed')
                  AND i.content IS NULL) f ON true
            WHERE m.id = i.id AND i.new_status <> i.old_status
            -- mjs.message_json(m) of the new row, with the text from the flush when it has
            -- it: reading it back would detoast what was just stored
            RETURNING m.id, CASE WHEN m.status IN ('completed', 'stopped', 'failed')
                                 THEN row_to_json(ROW(m.id, m.conversation_id, m.role,
                                          coalesce(i.content, m.content), m.status, m.error, m.model,
                                          mjs.rfc3339(m.created_at), mjs.rfc3339(m.updated_at))::mjs.message_out)
                            END AS data)
        SELECT array_agg(u.id), array_agg(u.data) INTO final_ids, final_json FROM u
            WHERE u.data IS NOT NULL;
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
ALTER FUNCTION mjs.flush_generations(json) SET jit = off;	-- replaced along with the body
COMMENT ON FUNCTION mjs.flush_generations(json) IS 'Worker side: one transaction per tick carrying every job with new text or a new status; set-based (003, leaner in 007).';

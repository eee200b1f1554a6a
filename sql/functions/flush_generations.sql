-- One flush of a worker tick, in one transaction: for every job in p (a JSON
-- array of mjs.flush_in) append text (message.delta), move the status
-- (message.updated), and finish the job on a final status. Set-based: a few
-- statements for the whole batch, whatever its size (row by row it cost
-- ~0.1 ms per reply per flush). Returns the ids whose message no longer
-- exists (deleted): the worker drops those jobs. The rules:
-- - users are locked in id order before any other row (so no deadlock with
--   REST writes, which lock their user first, nor with another worker's flush);
-- - text is appended only when the message is still offset characters long,
--   so a flush re-sent after a lost commit never doubles text, and only to a
--   message that is not final yet;
-- - statuses only move forward: created, pending, streaming, then a final one;
-- - events per message in this order: message.updated (pending),
--   message.updated (streaming), message.delta of the reasoning ("part":
--   "reasoning"), message.delta of the answer, message.updated (final),
--   appended by mjs.emit_batch.
-- The reasoning ("thinking") is a second text with its own offsets, stored as
-- chunks of part 1 and folded into messages.reasoning at the final status; the
-- status turns streaming on the first text of either part. A final status
-- also stores the usage and the finish reason the worker sends with it.
-- Streaming text goes to mjs.message_chunks, one row per message and flush:
-- rewriting the growing messages.content on every flush made a reply's cost
-- quadratic. A final status stores the whole text once: the worker's own copy
-- ("content", used only when its length matches what the database holds), else
-- the chunks folded. The chunks of finished messages are deleted later, in
-- batches, on the worker's second connection (mjs.drop_chunks): deleting a
-- reply's 600 chunks here dirtied 600 pages inside the flush.
CREATE OR REPLACE FUNCTION mjs.flush_generations(p json) RETURNS SETOF uuid
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    jobs   mjs.flush_in[];
    b      mjs.flush_item[];
    moved  mjs.flush_item[];
    final_ids  uuid[];
    final_json json[];
    t      timestamptz := now();
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
               j.reasoning, j.reasoning_offset, j.usage, j.finish_reason,
               m.status AS old_status,
               -- mjs.message_chars(m), inlined: as a function it runs once per row
               CASE WHEN m.status = 'streaming' THEN coalesce(lc.chars, char_length(m.content))
                    ELSE char_length(m.content) END AS old_chars,
               -- mjs.message_reasoning_chars(m), read only for a job with reasoning
               CASE WHEN coalesce(j.reasoning, '') = '' THEN NULL
                    WHEN m.status = 'streaming' THEN coalesce(lr.chars, char_length(m.reasoning))
                    ELSE char_length(m.reasoning) END AS old_rchars
        FROM unnest(jobs) j
        LEFT JOIN mjs.messages m ON m.id = j.id AND m.user_id = j.user_id
        LEFT JOIN LATERAL (
            SELECT c."offset" + char_length(c.text) AS chars FROM mjs.message_chunks c
            WHERE c.message_id = j.id AND c.part = 0 ORDER BY c."offset" DESC LIMIT 1) lc ON m.status = 'streaming'
        LEFT JOIN LATERAL (
            SELECT c."offset" + char_length(c.text) AS chars FROM mjs.message_chunks c
            WHERE c.message_id = j.id AND c.part = 1 ORDER BY c."offset" DESC LIMIT 1) lr
            ON m.status = 'streaming' AND coalesce(j.reasoning, '') <> ''),
    s1 AS (
        SELECT x.*, x.status = 'pending' AND x.old_status = 'created' AS do_pending,
               coalesce(x.text, '') <> '' AND x.old_chars = x."offset"
                   AND x.old_status IN ('created', 'pending', 'streaming') AS do_text,
               coalesce(x.reasoning, '') <> '' AND x.old_rchars = x.reasoning_offset
                   AND x.old_status IN ('created', 'pending', 'streaming') AS do_reasoning
        FROM x),
    s2 AS (
        SELECT s1.*, CASE WHEN do_pending THEN 'pending' ELSE old_status END AS st1 FROM s1),
    s3 AS (
        SELECT s2.*, (do_text OR do_reasoning) AND st1 IN ('created', 'pending') AS do_streaming FROM s2),
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
                    THEN s5.content END,
               CASE WHEN s5.do_reasoning THEN s5.reasoning END, s5.old_rchars,
               s5.usage::jsonb, s5.finish_reason
           )::mjs.flush_item ORDER BY s5.user_id, s5.id)
        INTO b FROM s5;

    RETURN QUERY SELECT i.id FROM unnest(b) i WHERE i.user_id IS NULL;

    -- 3. The text: one chunk per message, never a rewrite of the content; none
    -- when the final status stores the whole text anyway.
    INSERT INTO mjs.message_chunks (message_id, part, "offset", text)
        SELECT i.id, 0, i.old_chars, i.text FROM unnest(b) i WHERE i.text IS NOT NULL AND i.content IS NULL
        UNION ALL
        SELECT i.id, 1, i.old_rchars, i.reasoning FROM unnest(b) i WHERE i.reasoning IS NOT NULL;

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
                reasoning = CASE WHEN fr.text IS NULL THEN m.reasoning ELSE m.reasoning || fr.text END,
                usage = CASE WHEN i.new_status IN ('completed', 'stopped', 'failed') THEN i.usage
                             ELSE m.usage END,
                finish_reason = CASE WHEN i.new_status IN ('completed', 'stopped', 'failed') THEN i.finish_reason
                                     ELSE m.finish_reason END,
                updated_at = t
            FROM unnest(moved) i
            -- the condition inside, so that no chunk is read when it is false
            LEFT JOIN LATERAL (
                SELECT string_agg(c.text, '' ORDER BY c."offset") AS text FROM mjs.message_chunks c
                WHERE c.message_id = i.id AND c.part = 0 AND i.new_status IN ('completed', 'stopped', 'failed')
                  AND i.content IS NULL) f ON true
            LEFT JOIN LATERAL (
                SELECT string_agg(c.text, '' ORDER BY c."offset") AS text FROM mjs.message_chunks c
                WHERE c.message_id = i.id AND c.part = 1
                  AND i.new_status IN ('completed', 'stopped', 'failed')) fr ON true
            WHERE m.id = i.id AND i.new_status <> i.old_status
            -- mjs.message_json(m) of the new row, with the text from the flush when it has
            -- it: reading it back would detoast what was just stored
            RETURNING m.id, CASE WHEN m.status IN ('completed', 'stopped', 'failed')
                                 THEN row_to_json(ROW(m.id, m.conversation_id, m.role,
                                          coalesce(i.content, m.content), m.status, m.error, m.model,
                                          mjs.rfc3339(m.created_at), mjs.rfc3339(m.updated_at), m.reasoning,
                                          m.usage, m.finish_reason)::mjs.message_out)
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

    -- 5. The events, numbered per user in this order.
    PERFORM mjs.emit_batch(ARRAY(
        SELECT ROW(i.user_id, k.type, k.data)::mjs.event_in
        FROM unnest(b) i
        CROSS JOIN LATERAL (VALUES
            (1, 'message.updated', i.pending_json),
            (2, 'message.updated', i.streaming_json),
            (3, 'message.delta', CASE WHEN i.reasoning IS NOT NULL THEN
                (SELECT row_to_json(d) FROM (SELECT i.id AS message_id, i.conversation_id,
                                                    i.old_rchars AS "offset", i.reasoning AS text,
                                                    'reasoning' AS part) d) END),
            (4, 'message.delta', CASE WHEN i.text IS NOT NULL THEN
                (SELECT row_to_json(d) FROM (SELECT i.id AS message_id, i.conversation_id,
                                                    i.old_chars AS "offset", i.text AS text) d) END),
            (5, 'message.updated', CASE WHEN i.new_status <> i.old_status
                                         AND i.new_status IN ('completed', 'stopped', 'failed') THEN
                final_json[array_position(final_ids, i.id)] END)
        ) AS k(ord, type, data)
        WHERE i.user_id IS NOT NULL AND k.data IS NOT NULL
        ORDER BY i.user_id, i.id, k.ord));
END
$$;
COMMENT ON FUNCTION mjs.flush_generations(json) IS 'Worker side: one transaction per tick carrying every job with new text or a new status; set-based; events through mjs.emit_batch.';

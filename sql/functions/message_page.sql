-- One page of a conversation's messages after the cursor (p_after_usec,
-- p_after_id; NULL on the first page), p_limit rows, and the user's event seq
-- they reflect, in one snapshot. Rows of (seq, message JSON, the row's cursor):
-- the seq is NULL when the conversation is not the user's; a page without
-- messages is one row with NULLs beside the seq; no row when there is no such
-- user.
--
-- A page must walk messages_conversation in order and stop after p_limit
-- rows, whatever plan the connection caches; a plan that reads the whole
-- conversation to sort it makes every page of a long chat cost the chat
-- (5,000 messages: 4.4 ms a page against 0.4; tests/integration/test_sql_plans.py).
-- So:
-- - the messages are taken by conversation alone, from the conversation row
--   checked to be p_user's (LATERAL: none for another user's), and the user
--   is checked on the page. "AND m.user_id = p_user" in the scan made the
--   planner take the two conditions as independent and expect a row or none,
--   for which reading and sorting everything looks as cheap;
-- - the limit is a sub-select, which no plan knows: a custom plan that knew
--   it (51) and expected fewer rows in a conversation chose the sort again.
CREATE OR REPLACE FUNCTION mjs.message_page(p_user uuid, p_conversation uuid, p_after_usec bigint, p_after_id uuid,
                                 p_limit integer)
RETURNS TABLE (r_seq bigint, r_obj text, r_cursor text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- two statements, two cached plans: the cursor is an index condition (see mjs.conversation_page)
    IF p_after_usec IS NULL THEN
        RETURN QUERY
        SELECT CASE WHEN c.id IS NULL THEN NULL ELSE u.event_seq END, p.obj, p.cur FROM mjs.users u
        LEFT JOIN mjs.conversations c ON c.id = p_conversation AND c.user_id = p_user
        LEFT JOIN LATERAL (
            SELECT mjs.message_json(m)::text AS obj, m.created_at, m.id, m.user_id,
                   (extract(epoch FROM m.created_at) * 1000000)::bigint || '_' || m.id AS cur
            FROM mjs.messages m WHERE m.conversation_id = c.id
            ORDER BY m.created_at, m.id LIMIT (SELECT p_limit)) p ON p.user_id = p_user
        WHERE u.id = p_user ORDER BY p.created_at, p.id;
    ELSE
        RETURN QUERY
        SELECT CASE WHEN c.id IS NULL THEN NULL ELSE u.event_seq END, p.obj, p.cur FROM mjs.users u
        LEFT JOIN mjs.conversations c ON c.id = p_conversation AND c.user_id = p_user
        LEFT JOIN LATERAL (
            SELECT mjs.message_json(m)::text AS obj, m.created_at, m.id, m.user_id,
                   (extract(epoch FROM m.created_at) * 1000000)::bigint || '_' || m.id AS cur
            FROM mjs.messages m WHERE m.conversation_id = c.id
              AND (m.created_at, m.id) > (timestamptz 'epoch' + p_after_usec * interval '1 microsecond', p_after_id)
            ORDER BY m.created_at, m.id LIMIT (SELECT p_limit)) p ON p.user_id = p_user
        WHERE u.id = p_user ORDER BY p.created_at, p.id;
    END IF;
END
$$;
COMMENT ON FUNCTION mjs.message_page(uuid, uuid, bigint, uuid, integer) IS 'GET /api/conversations/{id}/messages: one page, oldest first, and the user''s event seq it reflects, in one snapshot.';

-- One page of a conversation's messages after the cursor (p_after_usec,
-- p_after_id; NULL on the first page), p_limit rows, and the user's event seq
-- they reflect, in one snapshot. Rows of (seq, message JSON, the row's cursor):
-- the seq is NULL when the conversation is not the user's; a page without
-- messages is one row with NULLs beside the seq; no row when there is no such
-- user.
--
-- The messages are chosen by conversation alone (none when it is not
-- p_user's), in the order of messages_conversation, and the user is checked
-- on the page: a message's user is its conversation's (send_message). With "AND m.user_id = p_user" in the scan, the generic plan
-- the cache settles on counted the two conditions as independent, expected a
-- row or none, and read the whole conversation through a bitmap to sort it for
-- its first rows (5,000 messages: 1.5 ms for a page of 51, against 0.05 in
-- index order; tests/integration/test_sql_plans.py).
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

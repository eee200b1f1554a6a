-- Every REST answer says which point of the user's event stream it reflects
-- (the Mjs-Event-Seq header, mjs-events(7)); a tab merges answers with the
-- live stream by seq. Reads take the seq from mjs.users.event_seq in the
-- statement that reads the data: one snapshot, in which the events with
-- seq <= event_seq are exactly the committed ones it sees, because every
-- event bumps event_seq in the transaction of the change.
--
-- The list reads are plpgsql functions: one statement, so one snapshot, whose
-- plan is cached on the connection (planning the join with the user's row on
-- every request made a list read ~0.1 ms slower, bench/run rest). The first
-- page and the next ones are two statements, each with its own cached plan: a
-- generic plan of "cursor IS NULL OR row < cursor" could not use the cursor as
-- an index condition and would read every row before it.
--
-- GET /api/conversations: one page, newest updated first, after the cursor
-- (p_after_usec, p_after_id; NULL on the first page), p_limit rows (the caller
-- asks one more than it shows, to learn whether a page follows). Rows of
-- (the user's event seq, conversation JSON, the row's cursor); a page with no
-- conversation is one row with NULLs beside the seq; no row when there is no
-- such user.
CREATE OR REPLACE FUNCTION mjs.conversation_page(p_user uuid, p_after_usec bigint, p_after_id uuid, p_limit integer)
RETURNS TABLE (r_seq bigint, r_obj text, r_cursor text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_after_usec IS NULL THEN
        RETURN QUERY
        SELECT u.event_seq, p.obj, p.cur FROM mjs.users u LEFT JOIN (
            SELECT mjs.conversation_json(c)::text AS obj, c.updated_at, c.id,
                   (extract(epoch FROM c.updated_at) * 1000000)::bigint || '_' || c.id AS cur
            FROM mjs.conversations c WHERE c.user_id = p_user
            ORDER BY c.updated_at DESC, c.id DESC LIMIT p_limit) p ON true
        WHERE u.id = p_user ORDER BY p.updated_at DESC, p.id DESC;
    ELSE
        RETURN QUERY
        SELECT u.event_seq, p.obj, p.cur FROM mjs.users u LEFT JOIN (
            SELECT mjs.conversation_json(c)::text AS obj, c.updated_at, c.id,
                   (extract(epoch FROM c.updated_at) * 1000000)::bigint || '_' || c.id AS cur
            FROM mjs.conversations c WHERE c.user_id = p_user
              AND (c.updated_at, c.id) < (timestamptz 'epoch' + p_after_usec * interval '1 microsecond', p_after_id)
            ORDER BY c.updated_at DESC, c.id DESC LIMIT p_limit) p ON true
        WHERE u.id = p_user ORDER BY p.updated_at DESC, p.id DESC;
    END IF;
END
$$;
COMMENT ON FUNCTION mjs.conversation_page(uuid, bigint, uuid, integer) IS 'GET /api/conversations: one page and the user''s event seq it reflects, in one snapshot.';

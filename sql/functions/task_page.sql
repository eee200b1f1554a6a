-- GET /api/tasks: the same for tasks, newest created first, the trash
-- (p_deleted) or the rest.
CREATE OR REPLACE FUNCTION mjs.task_page(p_user uuid, p_deleted boolean, p_after_usec bigint, p_after_id uuid,
                              p_limit integer)
RETURNS TABLE (r_seq bigint, r_obj text, r_cursor text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_after_usec IS NULL THEN
        RETURN QUERY
        SELECT u.event_seq, p.obj, p.cur FROM mjs.users u LEFT JOIN (
            SELECT mjs.task_json(t)::text AS obj, t.created_at, t.id,
                   (extract(epoch FROM t.created_at) * 1000000)::bigint || '_' || t.id AS cur
            FROM mjs.tasks t WHERE t.user_id = p_user AND (t.deleted_at IS NOT NULL) = p_deleted
            ORDER BY t.created_at DESC, t.id DESC LIMIT p_limit) p ON true
        WHERE u.id = p_user ORDER BY p.created_at DESC, p.id DESC;
    ELSE
        RETURN QUERY
        SELECT u.event_seq, p.obj, p.cur FROM mjs.users u LEFT JOIN (
            SELECT mjs.task_json(t)::text AS obj, t.created_at, t.id,
                   (extract(epoch FROM t.created_at) * 1000000)::bigint || '_' || t.id AS cur
            FROM mjs.tasks t WHERE t.user_id = p_user AND (t.deleted_at IS NOT NULL) = p_deleted
              AND (t.created_at, t.id) < (timestamptz 'epoch' + p_after_usec * interval '1 microsecond', p_after_id)
            ORDER BY t.created_at DESC, t.id DESC LIMIT p_limit) p ON true
        WHERE u.id = p_user ORDER BY p.created_at DESC, p.id DESC;
    END IF;
END
$$;
COMMENT ON FUNCTION mjs.task_page(uuid, boolean, bigint, uuid, integer) IS 'GET /api/tasks: one page and the user''s event seq it reflects, in one snapshot.';

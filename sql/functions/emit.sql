-- One event: mjs.emit_batch of one row. What the REST writes call, in the
-- same transaction as the change, after changing the rows.
CREATE OR REPLACE FUNCTION mjs.emit(p_user uuid, p_type text, p_data json) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_seq bigint;
BEGIN
    SELECT s INTO v_seq FROM mjs.emit_batch(ARRAY[ROW(p_user, p_type, p_data)::mjs.event_in]) s;
    RETURN v_seq;
END
$$;
COMMENT ON FUNCTION mjs.emit(uuid, text, json) IS 'Appends one event for a user (next gapless seq), stores it and NOTIFYs mjs_events, through mjs.emit_batch(); returns its seq. Call it in the transaction that makes the change, after changing the rows.';

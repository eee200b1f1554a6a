-- The session check of every authenticated request. mjs-api sends it in one
-- pipeline with the request's own statement (src/api/call.c): both run in one
-- transaction, and the error raised here for a session that is not valid aborts
-- the pipeline, so the request's statement never runs for it. PL/pgSQL keeps the
-- lookup's plan for the life of the connection.
--
-- p_user: the user id the token names (a session cookie is "USER-ID.SECRET"),
-- which the request's statement was given; NULL for a token of the older form
-- without it. Raises invalid_authorization_specification (28000) when there is
-- no such session, it expired, it belongs to another user, or the user is
-- disabled. last_seen_at is written at most once a minute.
CREATE OR REPLACE FUNCTION mjs.session_check(p_token text, p_user uuid,
    OUT user_id uuid, OUT session_id bigint, OUT left_ms bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_seen timestamptz;
BEGIN
    SELECT s.user_id, s.id, (extract(epoch FROM s.expires_at - now()) * 1000)::bigint, s.last_seen_at
      INTO user_id, session_id, left_ms, v_seen
      FROM mjs.sessions s JOIN mjs.users u ON u.id = s.user_id
     WHERE s.token_hash = sha256(convert_to(p_token, 'UTF8')) AND s.expires_at > now()
       AND NOT u.disabled AND (p_user IS NULL OR s.user_id = p_user);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'session expired or logged out' USING ERRCODE = 'invalid_authorization_specification';
    END IF;
    IF v_seen < now() - interval '1 minute' THEN
        UPDATE mjs.sessions SET last_seen_at = now() WHERE id = session_id;
    END IF;
END
$$;
COMMENT ON FUNCTION mjs.session_check(text, uuid) IS
    'The session check of a request: its user, session id and ms left; raises 28000 when the session is not valid.';

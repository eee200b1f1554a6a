-- A session that ends (logout, revocation, user deletion) ends its open streams
-- in every responder: they listen on mjs_sessions.
CREATE OR REPLACE FUNCTION mjs.session_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mjs_sessions', OLD.id::text);
    RETURN OLD;
END
$$;
CREATE OR REPLACE TRIGGER sessions_ended AFTER DELETE ON mjs.sessions
    FOR EACH ROW EXECUTE FUNCTION mjs.session_ended();
COMMENT ON FUNCTION mjs.session_ended() IS 'Notifies mjs_sessions with the id of a deleted session so responders close its streams.';

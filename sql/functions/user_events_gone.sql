CREATE OR REPLACE FUNCTION mjs.user_events_gone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM mjs.events e USING gone WHERE e.user_id = gone.id;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER users_events_gone AFTER DELETE ON mjs.users
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION mjs.user_events_gone();
COMMENT ON FUNCTION mjs.user_events_gone() IS 'Deletes the events of deleted users (in place of a foreign key: every event is written under its user''s row lock).';

-- No foreign key: its check would lock the message row on every chunk insert.
-- Chunks go with their message through this trigger instead (deletes of
-- messages, conversations and users all reach it).
CREATE OR REPLACE FUNCTION mjs.message_chunks_gone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM mjs.message_chunks c USING gone WHERE c.message_id = gone.id;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER messages_chunks_gone AFTER DELETE ON mjs.messages
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION mjs.message_chunks_gone();
COMMENT ON FUNCTION mjs.message_chunks_gone() IS 'Deletes the chunks of deleted messages.';

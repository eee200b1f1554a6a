-- 002_conversation_settings: a conversation's system prompt and default model
-- (issue 16, DESIGN.md "Upstreams"): set by PATCH /api/conversations/{id},
-- shown in its JSON (so every tab learns them from conversation.updated), sent
-- upstream with every reply of the conversation, each protocol in its own way.

ALTER TABLE mjs.conversations
    ADD COLUMN system_prompt text NOT NULL DEFAULT '',
    ADD COLUMN model text;
COMMENT ON COLUMN mjs.conversations.system_prompt IS 'Instructions sent upstream with every reply of the conversation (the system prompt); empty: none.';
COMMENT ON COLUMN mjs.conversations.model IS 'The model a message of the conversation uses when it names none; NULL: the server''s default (GET /api/models).';

ALTER TYPE mjs.conversation_out ADD ATTRIBUTE system_prompt text, ADD ATTRIBUTE model text;

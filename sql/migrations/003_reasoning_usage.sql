-- 003_reasoning_usage: a reply's reasoning ("thinking"), its token usage and
-- why it ended (issue 16, DESIGN.md "Upstreams").
--
-- Reasoning is kept apart from the answer: messages.reasoning beside content,
-- its streaming text in mjs.message_chunks with part 1 (the answer is part 0),
-- each part with its own offsets, folded into the row at the final status.
-- usage is {"input_tokens","output_tokens"} when the upstream reported it;
-- finish_reason is "stop", "length" (cut at a length limit) or the upstream's
-- own word.

ALTER TABLE mjs.messages
    ADD COLUMN reasoning text NOT NULL DEFAULT '',
    ADD COLUMN usage jsonb,
    ADD COLUMN finish_reason text;
COMMENT ON COLUMN mjs.messages.reasoning IS 'The reasoning ("thinking") the model streamed before or beside its answer; while streaming, the chunks of part 1 follow it (mjs.message_reasoning()).';
COMMENT ON COLUMN mjs.messages.usage IS 'Tokens the upstream counted, {"input_tokens","output_tokens"}, once the reply ended; NULL when it did not say.';
COMMENT ON COLUMN mjs.messages.finish_reason IS 'Why the reply ended: stop, length (cut at a length limit; the UI says "cut off"), or the upstream''s own word; NULL while generating or when unknown.';

ALTER TABLE mjs.message_chunks ADD COLUMN part smallint NOT NULL DEFAULT 0;
ALTER TABLE mjs.message_chunks DROP CONSTRAINT message_chunks_pkey;
ALTER TABLE mjs.message_chunks ADD PRIMARY KEY (message_id, part, "offset");
COMMENT ON COLUMN mjs.message_chunks.part IS '0: the answer (content), 1: the reasoning; each has its own offsets.';

ALTER TYPE mjs.message_out ADD ATTRIBUTE reasoning text, ADD ATTRIBUTE usage jsonb, ADD ATTRIBUTE finish_reason text;
ALTER TYPE mjs.flush_in ADD ATTRIBUTE reasoning text, ADD ATTRIBUTE reasoning_offset integer,
    ADD ATTRIBUTE usage json, ADD ATTRIBUTE finish_reason text;
ALTER TYPE mjs.flush_item ADD ATTRIBUTE reasoning text, ADD ATTRIBUTE old_rchars integer,
    ADD ATTRIBUTE usage jsonb, ADD ATTRIBUTE finish_reason text;

-- Its result gains reasoning_chars (for the recovery rule): a new return type,
-- so the function is dropped here and made again from its file right after.
DROP FUNCTION IF EXISTS mjs.claim_generations(text, integer, interval);

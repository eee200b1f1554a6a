-- 005_json_types: the fields of the API's task and user JSON as types, as
-- conversation_out and message_out are, so that mjs.task_json() and
-- mjs.user_json() build a row of one and PostgreSQL inlines them (a list of
-- tasks formatted each through a subquery, at twice the cost). The JSON is
-- the same bytes.
CREATE TYPE mjs.task_out AS (
    id uuid, kind text, prompt text, options jsonb, status text, progress integer, result jsonb,
    error text, blurred boolean, deleted_at text, created_at text, updated_at text);
COMMENT ON TYPE mjs.task_out IS 'The fields of the API''s task JSON, in order (mjs.task_json()).';
CREATE TYPE mjs.user_out AS (id uuid, username text, created_at text);
COMMENT ON TYPE mjs.user_out IS 'The fields of the API''s user JSON, in order (mjs.user_json()).';

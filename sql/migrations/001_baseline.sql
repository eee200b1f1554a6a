-- 001_baseline: the tables, indexes and types of mjs, as migrations 001-015
-- left them (squashed before the first release). Functions, views and
-- triggers are not here: they live one per file under sql/functions/ and
-- sql/views/ and `mjsctl migrate` applies those after the migrations
-- (sql/README.md). Applied inside one transaction together with its row in
-- mjs.schema_migrations, so it is either fully applied or not at all.

CREATE SCHEMA IF NOT EXISTS mjs;
COMMENT ON SCHEMA mjs IS 'mjs: AI studio with multi-device sync. All state lives here.';

-- ------------------------------------------------------------------ accounts

CREATE TABLE mjs.users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username      text NOT NULL,
    password_hash text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    event_seq     bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX users_username_lower ON mjs.users (lower(username));
COMMENT ON TABLE mjs.users IS 'Accounts. Usernames are unique ignoring case.';
COMMENT ON COLUMN mjs.users.password_hash IS 'crypt(3) hash (yescrypt, $y$...); never the password.';
COMMENT ON COLUMN mjs.users.disabled IS 'A disabled user cannot log in and its sessions stop working.';
COMMENT ON COLUMN mjs.users.event_seq IS 'Seq of the user''s latest event. mjs.emit() increments it under this row''s lock, which is what makes seqs gapless in commit order.';

CREATE TABLE mjs.sessions (
    token_hash   bytea PRIMARY KEY,
    id           bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    user_id      uuid NOT NULL REFERENCES mjs.users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    user_agent   text NOT NULL DEFAULT '',
    remote_addr  text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON mjs.sessions (user_id);
CREATE INDEX sessions_expires ON mjs.sessions (expires_at);
COMMENT ON TABLE mjs.sessions IS 'Login sessions. The cookie holds a random token; only its SHA-256 is stored.';
COMMENT ON COLUMN mjs.sessions.token_hash IS 'sha256 of the session cookie value. Deleting the row logs that session out.';
COMMENT ON COLUMN mjs.sessions.id IS 'Internal handle for operators and for ending the session''s open streams; never sent to clients.';
COMMENT ON COLUMN mjs.sessions.last_seen_at IS 'Updated at most once a minute per session.';

-- Failed logins slow down per username (DESIGN.md "Limits"). Each login that
-- fails counts against the username as typed (lower case), whether such a user
-- exists or not, so the answers and their timing tell nothing about which names
-- exist. Past login_failures_free failures in a row (mjs.conf), the name is
-- blocked for 1, 2, 4, ... seconds up to login_block_max; a login in that time
-- answers 429 with Retry-After before any password is hashed. A success deletes
-- the row; so does a failure an hour after the last one (counted from 1 again),
-- and the workers' housekeeping deletes rows a day old. Addresses are throttled
-- by nginx (limit_req).
CREATE TABLE mjs.login_failures (
    username        text PRIMARY KEY,       -- lower(username) as typed
    failures        integer NOT NULL,
    last_failed_at  timestamptz NOT NULL,
    blocked_until   timestamptz
);
CREATE INDEX login_failures_last ON mjs.login_failures (last_failed_at);
COMMENT ON TABLE mjs.login_failures IS 'Failed logins in a row per username as typed (known or not); a block makes the next logins answer 429 until blocked_until.';

-- ------------------------------------------------------------------ chat

CREATE TABLE mjs.conversations (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES mjs.users (id) ON DELETE CASCADE,
    title      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_user_updated ON mjs.conversations (user_id, updated_at DESC, id DESC);
COMMENT ON TABLE mjs.conversations IS 'Chat conversations. Deleting one deletes its messages.';
COMMENT ON COLUMN mjs.conversations.updated_at IS 'Last rename or message; lists are ordered by it, newest first.';

CREATE TABLE mjs.messages (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id uuid NOT NULL REFERENCES mjs.conversations (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES mjs.users (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('user', 'assistant')),
    content         text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'completed'
                    CHECK (status IN ('created', 'pending', 'streaming', 'completed', 'stopped', 'failed')),
    error           text,
    model           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_conversation ON mjs.messages (conversation_id, created_at, id);
COMMENT ON TABLE mjs.messages IS 'Chat messages. Assistant messages go created -> pending -> streaming -> completed|stopped|failed.';
COMMENT ON COLUMN mjs.messages.content IS 'Text so far; while streaming the worker appends to it on every flush.';
COMMENT ON COLUMN mjs.messages.error IS 'Why a failed message failed (upstream error, timeout, worker lost).';

-- Streaming text goes to append-only rows, one per flush and message;
-- messages.content is written once, when the message reaches a final status.
-- Every reader sees content || chunks through mjs.message_text(). No foreign
-- key: a statement trigger (mjs.message_chunks_gone) deletes the chunks of
-- deleted messages, which is cheaper than a check per inserted chunk.
CREATE TABLE mjs.message_chunks (
    message_id uuid NOT NULL,
    "offset"   integer NOT NULL,
    text       text NOT NULL,
    PRIMARY KEY (message_id, "offset")
);
COMMENT ON TABLE mjs.message_chunks IS 'Text of a streaming message not yet folded into messages.content, one row per worker flush. Read it through mjs.message_text(), which ignores the chunks of a message that is no longer streaming (the worker deletes those in batches with mjs.drop_chunks(); mjs.sweep_chunks() the rest).';
COMMENT ON COLUMN mjs.message_chunks."offset" IS 'Characters of the message before this chunk (the offset of its message.delta event).';

-- The queue of AI replies: the job a worker claims, leases and runs, one per
-- assistant message.
CREATE TABLE mjs.generations (
    message_id     uuid PRIMARY KEY REFERENCES mjs.messages (id) ON DELETE CASCADE,
    user_id        uuid NOT NULL REFERENCES mjs.users (id) ON DELETE CASCADE,
    model          text NOT NULL,
    state          text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done')),
    worker         text,
    lease_until    timestamptz,
    attempts       integer NOT NULL DEFAULT 0,
    stop_requested boolean NOT NULL DEFAULT false,
    tokens         integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    first_token_at timestamptz,
    last_flush_at  timestamptz,
    finished_at    timestamptz
);
CREATE INDEX generations_open ON mjs.generations (created_at) WHERE state <> 'done';
-- the per-user cap (max_replies_per_user) counts these under the user's lock
CREATE INDEX generations_user_open ON mjs.generations (user_id) WHERE state <> 'done';
COMMENT ON TABLE mjs.generations IS 'One row per assistant reply: the job a worker claims, leases and runs. state done rows are kept for mjsctl gen list.';
COMMENT ON COLUMN mjs.generations.state IS 'queued: waiting for a worker; running: a worker holds the lease; done: the message reached a final status.';
COMMENT ON COLUMN mjs.generations.worker IS 'Name of the worker (host:pid) holding or last holding the lease.';
COMMENT ON COLUMN mjs.generations.lease_until IS 'The worker renews this while it runs the job; once past, another worker takes the job over.';
COMMENT ON COLUMN mjs.generations.stop_requested IS 'Set by POST /api/messages/{id}/stop; the worker aborts and marks the message stopped.';
COMMENT ON COLUMN mjs.generations.tokens IS 'Content chunks received from the upstream so far.';

-- ------------------------------------------------------------------ tasks

-- Image and video tasks. A task is both what the user sees (status, progress,
-- result, blurred, deleted_at) and the job a worker leases (worker,
-- lease_until, upstream_id).
CREATE TABLE mjs.tasks (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES mjs.users (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('image', 'video')),
    prompt       text NOT NULL,
    options      jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL DEFAULT 'submitting'
                 CHECK (status IN ('submitting', 'processing', 'succeeded', 'failed')),
    progress     integer NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    result       jsonb,
    error        text,
    blurred      boolean NOT NULL DEFAULT false,
    deleted_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    upstream_id  text,
    worker       text,
    lease_until  timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    submitted_at timestamptz,
    finished_at  timestamptz,
    retried_at   timestamptz,
    content_url  text
);
CREATE INDEX tasks_user_created ON mjs.tasks (user_id, created_at DESC, id DESC);
CREATE INDEX tasks_open ON mjs.tasks (created_at) WHERE status IN ('submitting', 'processing');
-- the per-user cap (max_tasks_per_user) counts these under the user's lock
CREATE INDEX tasks_user_open ON mjs.tasks (user_id) WHERE status IN ('submitting', 'processing');
COMMENT ON TABLE mjs.tasks IS 'Image and video tasks: the user''s object and the job a worker leases. Deleting is soft (deleted_at); a deleted task keeps running and keeps its result for a restore.';
COMMENT ON COLUMN mjs.tasks.id IS 'The task id the API shows.';
COMMENT ON COLUMN mjs.tasks.user_id IS 'Owner; every other user gets 404 for this id.';
COMMENT ON COLUMN mjs.tasks.kind IS 'image (Midjourney-proxy upstream) or video (OpenAI-style video upstream).';
COMMENT ON COLUMN mjs.tasks.prompt IS 'What to draw or film, as the user wrote it (at most 4000 characters).';
COMMENT ON COLUMN mjs.tasks.options IS 'Optional request fields the API accepted (video: model, seconds, size); passed to the upstream.';
COMMENT ON COLUMN mjs.tasks.status IS 'submitting -> processing -> succeeded | failed; it only moves forward, except that mjs.retry_task takes a failed task back to submitting.';
COMMENT ON COLUMN mjs.tasks.progress IS 'Percent done as the upstream reports it, 0-100; it only grows, and is 100 on success.';
COMMENT ON COLUMN mjs.tasks.result IS 'JSON array of result URLs once succeeded, else NULL.';
COMMENT ON COLUMN mjs.tasks.error IS 'Why a failed task failed, in words a user can act on.';
COMMENT ON COLUMN mjs.tasks.blurred IS 'The user asked to blur the result in every view (PATCH blurred).';
COMMENT ON COLUMN mjs.tasks.deleted_at IS 'Set when the task is in the trash (DELETE); NULL again after a restore.';
COMMENT ON COLUMN mjs.tasks.created_at IS 'Creation; lists are ordered by it, newest first.';
COMMENT ON COLUMN mjs.tasks.updated_at IS 'Last visible change (status, progress, result, error, blurred, deleted_at).';
COMMENT ON COLUMN mjs.tasks.upstream_id IS 'The upstream''s id of the job, stored once the submit answered: a worker that takes the task over polls it and never submits again. Cleared only by mjs.retry_task (a new submit).';
COMMENT ON COLUMN mjs.tasks.worker IS 'Name of the worker (host:pid) holding or last holding the lease.';
COMMENT ON COLUMN mjs.tasks.lease_until IS 'The worker renews this while the task is open; once past, another worker takes the task over.';
COMMENT ON COLUMN mjs.tasks.attempts IS 'How many times a worker claimed the task since its creation or last retry (1 unless a worker died or shut down).';
COMMENT ON COLUMN mjs.tasks.submitted_at IS 'When the upstream accepted the submit (upstream_id known).';
COMMENT ON COLUMN mjs.tasks.finished_at IS 'When the task reached succeeded or failed.';
COMMENT ON COLUMN mjs.tasks.retried_at IS 'When an operator last retried the failed task (mjsctl task retry); task_deadline counts from here when set, else from created_at.';
COMMENT ON COLUMN mjs.tasks.content_url IS 'The upstream URL of a succeeded video that needs the upstream key; never shown (mjs.task_json leaves it out); GET /api/tasks/{id}/content fetches it.';

-- ------------------------------------------------------------------ events

-- No foreign key on users: it ran one referential check per inserted event
-- (4.5 of the 18 ms of a 250-reply flush). Every event is inserted under its
-- user's row lock and deleting a user takes that lock, so no event can outlive
-- its user; a statement trigger (mjs.user_events_gone) does the cascade.
CREATE TABLE mjs.events (
    user_id    uuid NOT NULL,
    seq        bigint NOT NULL,
    type       text NOT NULL,
    data       json NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, seq)
);
CREATE INDEX events_created ON mjs.events (created_at);
COMMENT ON TABLE mjs.events IS 'Every change a user can see, numbered per user 1, 2, 3... without gaps in commit order. The SSE id of an event is its seq; reconnecting tabs replay from here.';
COMMENT ON COLUMN mjs.events.type IS 'conversation.created|updated|deleted, message.created|updated|deleted|delta, task.created|updated|deleted|restored.';
COMMENT ON COLUMN mjs.events.data IS 'Exactly the JSON sent as the SSE data line.';

-- Event data is stored uncompressed: only the big ones (a finished reply's
-- message.updated carries its whole text) leave the row, and each is read back
-- by every responder right away; pglz cost a compression and a decompression
-- per reader for little space in a table that is pruned.
ALTER TABLE mjs.events ALTER COLUMN data SET STORAGE EXTERNAL;

-- How far the workers' retention got (mjs.retain; mjs(7), RETENTION).
CREATE TABLE mjs.retention (
    id              integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    delta_since     timestamptz,
    last_run_at     timestamptz,
    last_general_at timestamptz,
    deltas_deleted  bigint NOT NULL DEFAULT 0,
    events_deleted  bigint NOT NULL DEFAULT 0,
    gens_deleted    bigint NOT NULL DEFAULT 0
);
INSERT INTO mjs.retention DEFAULT VALUES;
COMMENT ON TABLE mjs.retention IS 'One row: how far the workers'' retention got (mjs.retain). delta_since: every deletable message.delta older than this is gone; the counters add up since the installation.';

-- High churn: events are inserted and deleted all day, chunks live for the
-- length of a reply. PostgreSQL's defaults vacuum a table when a fifth of it
-- is dead, which on a big events table means millions of dead rows and
-- bloated indexes; these vacuum and analyze after a twentieth, and tell
-- vacuum to skip the insert-only visibility pass less often.
ALTER TABLE mjs.events SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05,
                            autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE mjs.message_chunks SET (autovacuum_vacuum_scale_factor = 0.05,
                                    autovacuum_analyze_scale_factor = 0.05);
ALTER TABLE mjs.generations SET (autovacuum_vacuum_scale_factor = 0.05);

-- ------------------------------------------------------------------ operations

-- Each mjs-api process upserts its row every few seconds and deletes it when it
-- stops. UNLOGGED: it is a heartbeat, not data; a crash of PostgreSQL empties
-- it and the responders write it again within one interval.
CREATE UNLOGGED TABLE mjs.responders (
    name         text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    listen       text NOT NULL,
    streams      integer NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    capped_users uuid[] NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE mjs.responders IS 'One row per running mjs-api process (name host:pid), upserted every 5 s with its count of open event streams; deleted when it stops. A row whose heartbeat is older than 30 s belongs to a responder that died.';
COMMENT ON COLUMN mjs.responders.streams IS 'Open GET /api/events streams the responder held at heartbeat_at.';
COMMENT ON COLUMN mjs.responders.listen IS 'The FastCGI socket (listen in mjs.conf) the responder accepts on.';
COMMENT ON COLUMN mjs.responders.capped_users IS 'Users holding max_streams_per_user streams on this responder at heartbeat_at (their next stream there gets 429).';

-- ------------------------------------------------------------------ types
-- Row types the functions build and take. A function's argument or result
-- type cannot change under CREATE OR REPLACE, so they live with the tables.

-- The fields of the API's JSON, in order: row_to_json() of one of these is
-- inlined where a SQL function with a FROM clause would start an executor per
-- call (0.16 ms per message before, 40 ms for the 250 events of a burst).
CREATE TYPE mjs.message_out AS (
    id uuid, conversation_id uuid, role text, content text, status text, error text, model text,
    created_at text, updated_at text);
COMMENT ON TYPE mjs.message_out IS 'The fields of the API''s message JSON, in order (mjs.message_json()).';
CREATE TYPE mjs.conversation_out AS (id uuid, title text, created_at text, updated_at text);
COMMENT ON TYPE mjs.conversation_out IS 'The fields of the API''s conversation JSON, in order (mjs.conversation_json()).';

-- One event to append (mjs.emit_batch()).
CREATE TYPE mjs.event_in AS (
    user_id uuid,
    type    text,
    data    json
);
COMMENT ON TYPE mjs.event_in IS 'Input of mjs.emit_batch(): one event for a user, numbered in the order given.';

-- One job as the worker sends it (the JSON array of mjs.flush_generations).
CREATE TYPE mjs.flush_in AS (
    id       uuid,
    user_id  uuid,          -- the job's user: locked before anything else
    "offset" integer,       -- characters of the message the worker knows are stored
    text     text,          -- new text to append at offset
    status   text,          -- new status, or NULL
    error    text,
    tokens   integer,
    content  text           -- with a final status: the whole text, when the worker has it
);
COMMENT ON TYPE mjs.flush_in IS 'Input of mjs.flush_generations(): one job of the worker''s flush.';

-- One generation of a flush, as planned after the users are locked.
CREATE TYPE mjs.flush_item AS (
    id              uuid,
    user_id         uuid,           -- NULL: the message is gone
    conversation_id uuid,
    old_status      text,
    new_status      text,
    old_chars       integer,        -- content length before this flush
    text            text,           -- appended text, NULL when not applied
    error           text,
    tokens          integer,
    pending_json    json,           -- message.updated events, NULL when not emitted
    streaming_json  json,
    content         text            -- the final text to store, NULL to fold the chunks
);
COMMENT ON TYPE mjs.flush_item IS 'Internal to mjs.flush_generations(): one job of a flush and what it changes. content: the final text to store, NULL to fold the chunks.';

-- 001_init: accounts, sessions, conversations, messages and the per-user event log.
-- Applied by `mjsctl migrate` inside one transaction together with its row in
-- mjs.schema_migrations, so it is either fully applied or not at all.

CREATE SCHEMA IF NOT EXISTS mjs;
COMMENT ON SCHEMA mjs IS 'mjs: AI studio with multi-device sync. All state lives here.';

-- Times leave the database as RFC 3339 UTC with microseconds, e.g. 2026-11-25T05:07:49.123456Z.
CREATE FUNCTION mjs.rfc3339(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
COMMENT ON FUNCTION mjs.rfc3339(timestamptz) IS 'Formats a timestamp as the API does: RFC 3339, UTC, microseconds.';

CREATE TABLE mjs.users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username      text NOT NULL,
    password_hash text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    event_seq     bigint NOT NULL DEFAULT 0,
    CONSTRAINT users_username_format CHECK (username ~ '^[A-Za-z0-9_.-]{3,32}$')
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

-- A session that ends (logout, revocation, user deletion) ends its open streams
-- in every responder: they listen on mjs_sessions.
CREATE FUNCTION mjs.session_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mjs_sessions', OLD.id::text);
    RETURN OLD;
END
$$;
CREATE TRIGGER sessions_ended AFTER DELETE ON mjs.sessions
    FOR EACH ROW EXECUTE FUNCTION mjs.session_ended();
COMMENT ON FUNCTION mjs.session_ended() IS 'Notifies mjs_sessions with the id of a deleted session so responders close its streams.';

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

CREATE TABLE mjs.events (
    user_id    uuid NOT NULL REFERENCES mjs.users (id) ON DELETE CASCADE,
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

-- Lock order, the rule that keeps writers free of deadlocks: a transaction that
-- changes a user's data locks that user's row first (mjs.lock_user), before any
-- other row, and a transaction touching several users locks them in id order.
CREATE FUNCTION mjs.lock_user(p_user uuid) RETURNS uuid
LANGUAGE sql AS $$
  SELECT id FROM mjs.users WHERE id = p_user FOR NO KEY UPDATE
$$;
COMMENT ON FUNCTION mjs.lock_user(uuid) IS 'Locks a user''s row (and so its event counter) until commit; returns the id, or NULL when no such user. Call it first in every write.';

-- The one function every write path calls, in the same transaction as the change.
-- It takes the next seq under the user's row lock (held until commit, so seqs are
-- gapless in commit order), stores the event and notifies the responders.
-- The notification carries the data when it fits; otherwise readers fetch the row.
CREATE FUNCTION mjs.emit(p_user uuid, p_type text, p_data json) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_seq     bigint;
    v_head    text;
    v_data    text := p_data::text;
BEGIN
    UPDATE mjs.users SET event_seq = event_seq + 1 WHERE id = p_user RETURNING event_seq INTO v_seq;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mjs.emit: no such user %', p_user;
    END IF;
    INSERT INTO mjs.events (user_id, seq, type, data) VALUES (p_user, v_seq, p_type, p_data);
    v_head := p_user::text || ' ' || v_seq || ' ' || p_type || ' ';
    IF octet_length(v_head) + octet_length(v_data) < 7900 THEN
        PERFORM pg_notify('mjs_events', v_head || v_data);
    ELSE
        PERFORM pg_notify('mjs_events', v_head);
    END IF;
    RETURN v_seq;
END
$$;
COMMENT ON FUNCTION mjs.emit(uuid, text, json) IS 'Appends an event for a user (next gapless seq) and NOTIFYs mjs_events. Call it in the transaction that makes the change, after changing the rows.';

CREATE FUNCTION mjs.conversation_json(c mjs.conversations) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT row_to_json(r) FROM (SELECT c.id, c.title,
      mjs.rfc3339(c.created_at) AS created_at, mjs.rfc3339(c.updated_at) AS updated_at) r
$$;
COMMENT ON FUNCTION mjs.conversation_json(mjs.conversations) IS 'The API''s JSON for a conversation (REST body and event data).';

CREATE FUNCTION mjs.message_json(m mjs.messages) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT row_to_json(r) FROM (SELECT m.id, m.conversation_id, m.role, m.content, m.status,
      m.error, m.model, mjs.rfc3339(m.created_at) AS created_at,
      mjs.rfc3339(m.updated_at) AS updated_at) r
$$;
COMMENT ON FUNCTION mjs.message_json(mjs.messages) IS 'The API''s JSON for a message (REST body and event data).';

CREATE FUNCTION mjs.user_json(u mjs.users) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT row_to_json(r) FROM (SELECT u.id, u.username, mjs.rfc3339(u.created_at) AS created_at) r
$$;
COMMENT ON FUNCTION mjs.user_json(mjs.users) IS 'The API''s JSON for a user (never the hash).';

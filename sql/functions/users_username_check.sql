-- The username rule, checked only when a username is written. A CHECK
-- constraint is evaluated on every UPDATE of the row, whatever the columns
-- changed, and every event a user gets bumps mjs.users.event_seq: the regular
-- expression ran once per user per flush, 6 % of the flush's PostgreSQL time
-- at 250 replies (perf, docs/BENCHMARKS.md). This trigger enforces the same
-- rule with the same error (SQLSTATE 23514, constraint users_username_format)
-- and costs nothing when only event_seq, disabled or password_hash change.
CREATE OR REPLACE FUNCTION mjs.users_username_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.username !~ '^[A-Za-z0-9_.-]{3,32}$' THEN
        RAISE EXCEPTION 'new row for relation "users" violates check constraint "users_username_format"'
            USING ERRCODE = 'check_violation', SCHEMA = 'mjs', TABLE = 'users',
                  CONSTRAINT = 'users_username_format',
                  DETAIL = 'A username is 3 to 32 of A-Z a-z 0-9 _ . -';
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER users_username_format BEFORE INSERT OR UPDATE OF username ON mjs.users
    FOR EACH ROW EXECUTE FUNCTION mjs.users_username_check();
COMMENT ON FUNCTION mjs.users_username_check() IS 'The username rule (3 to 32 of A-Z a-z 0-9 _ . -), run when a username is inserted or changed; in place of a CHECK constraint, which ran on every event_seq bump.';

-- Lock order, the rule that keeps writers free of deadlocks: a transaction that
-- changes a user's data locks that user's row first (mjs.lock_user), before any
-- other row, and a transaction touching several users locks them in id order.
CREATE OR REPLACE FUNCTION mjs.lock_user(p_user uuid) RETURNS uuid
LANGUAGE sql AS $$
  SELECT id FROM mjs.users WHERE id = p_user FOR NO KEY UPDATE
$$;
COMMENT ON FUNCTION mjs.lock_user(uuid) IS 'Locks a user''s row (and so its event counter) until commit; returns the id, or NULL when no such user. Call it first in every write.';

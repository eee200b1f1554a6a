"""
Reset: when the events a reconnecting stream asks for are no longer stored
(pruned), the stream says `event: reset` with {"seq": N} — the client reloads
state over REST — and then carries on live from N.
"""

from contextlib import ExitStack

import mjs

WAIT = 20


def prune(user_id, through_seq):
    """Deletes the user's events with seq <= through_seq, as pruning does."""
    mjs.psql("DELETE FROM mjs.events WHERE user_id = :'p1' AND seq <= :'p2'::bigint", user_id, through_seq)
    left = mjs.psql_value("SELECT min(seq) FROM mjs.events WHERE user_id = :'p1'", user_id)
    assert left is None or int(left) > through_seq, left


def assert_reset_then_live(s, head, changes, label):
    reset = s.wait_count(1, WAIT)[0]
    assert reset.event == 'reset', '%s: expected `event: reset` first, got %r' % (label, reset)
    assert reset.json == {'seq': head}, '%s: reset data: expected {"seq": %d}, got %r' % (label, head, reset.data)
    assert reset.id == head, \
        '%s: the reset event should carry id %d (so the next reconnect starts there), got %r' % (label, head, reset.id)
    live = changes.mixed(3)
    s.wait_count(1 + len(live), WAIT)
    mjs.assert_events_match(s.events()[1:], live, head + 1, '%s, after reset' % label)


@mjs.timeout(60)
def test_reconnect_after_pruned_events_gets_reset_then_live_events():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        changes = mjs.Changes(c, 'reset')
        changes.mixed(6)
        prune(c.user_id, 4)
        s = stack.enter_context(mjs.SSE(c, last_event_id=2))
        assert s.status == 200, (s.status, s.body)
        assert_reset_then_live(s, 6, changes, 'Last-Event-ID: 2 with 1..4 pruned')


@mjs.timeout(60)
def test_reconnect_after_all_events_were_pruned_gets_reset():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        changes = mjs.Changes(c, 'reset-all')
        changes.mixed(5)
        prune(c.user_id, 5)
        s = stack.enter_context(mjs.SSE(c, query_last_event_id=1))
        assert s.status == 200, (s.status, s.body)
        assert_reset_then_live(s, 5, changes, '?last_event_id=1 with everything pruned')


@mjs.timeout(60)
def test_reconnect_just_before_the_pruned_horizon_replays_without_reset():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        changes = mjs.Changes(c, 'horizon')
        changes.mixed(6)
        prune(c.user_id, 3)
        s = stack.enter_context(mjs.SSE(c, last_event_id=3))
        assert s.status == 200, (s.status, s.body)
        s.wait_count(3, WAIT)
        mjs.assert_events_match(s.events(), changes.expected[3:], 4, 'replay from the horizon')


@mjs.timeout(60)
def test_last_event_id_ahead_of_the_users_head_gets_reset():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        changes = mjs.Changes(c, 'ahead')
        changes.mixed(2)
        # An id this user's stream never gave out (another user's, an old database's):
        # waiting for seq 1000 would hide every event up to it, so the client must reload.
        s = stack.enter_context(mjs.SSE(c, last_event_id=1000))
        assert s.status == 200, (s.status, s.body)
        assert_reset_then_live(s, 2, changes, 'Last-Event-ID: 1000 with head 2')

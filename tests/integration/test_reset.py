"""
Reset: when the events a reconnecting stream asks for are no longer stored
(pruned), the stream says `event: reset` with {"seq": N, "epoch": E, "reason":
"pruned"} — the client reloads state over REST — and then carries on live from
E.N. When the tab's last event belongs to a history the database no longer has
(a failover lost it, and its seqs may now be other events), the reason is
"history" and no seq is skipped or repeated silently.
"""

from contextlib import ExitStack

import mjs

WAIT = 20


def prune(user_id, through_seq):
    """Deletes the user's events with seq <= through_seq, as pruning does."""
    mjs.psql("DELETE FROM mjs.events WHERE user_id = :'p1' AND seq <= :'p2'::bigint", user_id, through_seq)
    left = mjs.psql_value("SELECT min(seq) FROM mjs.events WHERE user_id = :'p1'", user_id)
    assert left is None or int(left) > through_seq, left


def epoch():
    return int(mjs.psql_value('SELECT mjs.epoch()'))


def assert_reset_then_live(s, head, changes, label, reason='pruned', head_epoch=None, bare=True):
    """bare: the stream was opened with a bare seq, so its ids are bare too (mjs-events(7))."""
    head_epoch = epoch() if head_epoch is None else head_epoch
    reset = s.wait_count(1, WAIT)[0]
    assert reset.event == 'reset', '%s: expected `event: reset` first, got %r' % (label, reset)
    want = {'seq': head, 'epoch': head_epoch, 'reason': reason}
    assert reset.json == want, '%s: reset data: expected %r, got %r' % (label, want, reset.data)
    want_id = str(head) if bare else '%d.%d' % (head_epoch, head)
    assert reset.raw_id == want_id, \
        '%s: the reset event should carry id %s (so the next reconnect starts there), got %r' % (
            label, want_id, reset.raw_id)
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
        assert_reset_then_live(s, 2, changes, 'Last-Event-ID: 1000 with head 2', reason='history')


@mjs.timeout(60)
def test_ids_carry_the_epoch_and_a_tab_from_a_lost_history_gets_reset_never_a_skip():
    """
    What a failover to a standby that missed the newest commits leaves: events
    5 and 6 of the history tabs saw are gone and the new primary wrote other
    events with those seqs in a new epoch. Made here by moving the stored
    events 5 and 6 to the next epoch, as the new history would have them.
    """
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        changes = mjs.Changes(c, 'epochs')
        changes.mixed(6)
        e = epoch()
        full = stack.enter_context(mjs.SSE(c, last_event_id='%d.0' % e))
        got = full.wait_count(6, WAIT)
        assert [ev.raw_id for ev in got] == ['%d.%d' % (e, n) for n in range(1, 7)], \
            'ids should be EPOCH.SEQ with the server\'s epoch %d: %r' % (e, [ev.raw_id for ev in got])
        assert c.me()['event_id'] == '%d.6' % e, c.me()
        # a tab that resumes within the stored history replays as before, from a full or a bare id
        for last in ('%d.3' % e, 3):
            s = stack.enter_context(mjs.SSE(c, last_event_id=last))
            mjs.assert_events_match(s.wait_count(3, WAIT), changes.expected[3:], 4, 'resume after %s' % last)

        mjs.psql("UPDATE mjs.events SET epoch = epoch + 1 WHERE user_id = :'p1' AND seq >= 5", c.user_id)
        # saw 6 (lost): reset; saw 4 (kept): replays the new 5 and 6 under their new epoch
        lost = stack.enter_context(mjs.SSE(c, last_event_id='%d.6' % e))
        kept = stack.enter_context(mjs.SSE(c, last_event_id='%d.4' % e))
        got = kept.wait_count(2, WAIT)
        assert [ev.raw_id for ev in got] == ['%d.5' % (e + 1), '%d.6' % (e + 1)], [ev.raw_id for ev in got]
        assert_reset_then_live(lost, 6, changes, 'Last-Event-ID of a lost history', reason='history',
                               head_epoch=e + 1, bare=False)
        # a bare 6 means the current epoch (e), which event 6 no longer has; a client that
        # sends bare seqs predates epochs and reads ids as numbers: it gets bare ids
        bare = stack.enter_context(mjs.SSE(c, last_event_id=6))
        first = bare.wait_count(1, WAIT)[0]
        assert first.event == 'reset' and first.json['reason'] == 'history' and '.' not in first.raw_id, first
        # a malformed id changes nothing and says why
        bad = stack.enter_context(mjs.SSE(c, last_event_id='1.2.3'))
        assert bad.status == 400 and b'EPOCH.SEQ' in bad.body, (bad.status, bad.body)

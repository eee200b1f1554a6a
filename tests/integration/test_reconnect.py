"""
Reconnect: a stream opened with a last event id (the Last-Event-ID header a
browser sends, or ?last_event_id=) gets exactly the events after it from the
table, then live ones — nothing earlier, nothing twice, nothing missing.
"""

from contextlib import ExitStack

import mjs

WAIT = 20


def reconnect_replays_exactly_the_missed_events(how):
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        changes = mjs.Changes(c, 'reconnect')
        first = stack.enter_context(mjs.SSE(c))
        assert first.status == 200 and first.start_id == 0, (first.status, first.start_id, first.body)
        changes.mixed(3)
        seen = first.wait_count(3, WAIT)
        mjs.assert_events_match(seen, changes.expected, 1, 'first stream')
        last_id = seen[-1].id
        first.close()

        missed = changes.mixed(5)
        if how == 'header':
            again = stack.enter_context(mjs.SSE(c, last_event_id=last_id))
        else:
            again = stack.enter_context(mjs.SSE(c, query_last_event_id=last_id))
        assert again.status == 200, 'reconnect (%s): expected 200, got %s %r' % (how, again.status, again.body)
        replayed = again.wait_count(len(missed), WAIT)
        mjs.assert_events_match(replayed, missed, last_id + 1, 'replay (%s)' % how)

        live = changes.mixed(3)
        again.wait_count(len(missed) + len(live), WAIT)
        mjs.assert_events_match(again.events(), missed + live, last_id + 1, 'replay then live (%s)' % how)
        assert again.marker_ids in ([], [last_id]), \
            'reconnect (%s): unexpected id-only blocks %r' % (how, again.marker_ids)


@mjs.timeout(60)
def test_reconnect_with_last_event_id_header_replays_exactly_the_missed_events_then_live():
    reconnect_replays_exactly_the_missed_events('header')


@mjs.timeout(60)
def test_reconnect_with_last_event_id_query_replays_exactly_the_missed_events_then_live():
    reconnect_replays_exactly_the_missed_events('query')


@mjs.timeout(60)
def test_stream_opened_at_me_event_seq_misses_nothing_made_after_loading_state():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        other_tab = stack.enter_context(c.another_device())
        changes = mjs.Changes(other_tab, 'me')
        changes.mixed(5)                       # ends with one conversation left

        # A client loads state, then opens the stream at the seq it loaded.
        me = c.me()
        assert set(me) >= {'id', 'username', 'created_at', 'event_seq'}, me
        assert me['event_seq'] == 5 == mjs.db_event_seq(c.user_id), \
            '/api/me event_seq: expected 5, got %r' % me['event_seq']
        listed = c.get('/api/conversations').expect(200)
        assert len(listed['items']) == 1, listed
        # made by another device after the state was loaded, before the stream opens
        mark = len(changes.expected)
        kept = changes.live[0]
        changes.create()
        changes.rename(kept)
        changes.delete(kept)
        after_load = changes.expected[mark:]
        s = stack.enter_context(mjs.SSE(c, query_last_event_id=me['event_seq']))
        assert s.status == 200, (s.status, s.body)
        mark = len(changes.expected)
        changes.rename(changes.live[0])
        changes.create()
        live = changes.expected[mark:]
        s.wait_count(5, WAIT)
        mjs.assert_events_match(s.events(), after_load + live, me['event_seq'] + 1, 'stream from /api/me')

        # The state loaded plus the events replayed equals the state now.
        state = {conv['id']: conv for conv in listed['items']}
        for ev in s.events():
            if ev.event == 'conversation.deleted':
                state.pop(ev.json['id'], None)
            else:
                state[ev.json['id']] = ev.json
        now = c.get('/api/conversations?limit=200').expect(200)
        assert state == {conv['id']: conv for conv in now['items']}, \
            'state rebuilt from events %s != listed %s' % (mjs.short(state), mjs.short(now))


@mjs.timeout(60)
def test_stream_opened_at_the_head_sends_only_new_events():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        changes = mjs.Changes(c, 'head')
        changes.mixed(3)
        s = stack.enter_context(mjs.SSE(c, last_event_id=3))
        assert s.status == 200, (s.status, s.body)
        live = changes.mixed(2)
        s.wait_count(2, WAIT)
        mjs.assert_events_match(s.events(), live, 4, 'stream from the head')

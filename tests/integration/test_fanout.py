"""
Fan-out: every open stream of a user (tabs sharing a session, other devices)
gets each of the user's events exactly once, in seq order, with the data REST
returned — and no other user's events.
"""

from contextlib import ExitStack

import mjs

WAIT = 20


def open_streams(stack, client):
    """Three streams for client's user: two tabs of one session and one other device."""
    device = stack.enter_context(client.another_device())
    return [stack.enter_context(mjs.SSE(client)),
            stack.enter_context(mjs.SSE(client.same_session())),
            stack.enter_context(mjs.SSE(device))]


def signed_up(stack):
    """A new user's client, closed with the stack."""
    c = stack.enter_context(mjs.Client())
    c.signup()
    return c


@mjs.timeout(90)
def test_every_stream_of_a_user_gets_each_own_event_once_in_order_and_none_of_others():
    with ExitStack() as stack:
        a, b = signed_up(stack), signed_up(stack)
        a_streams = open_streams(stack, a)
        b_streams = open_streams(stack, b)
        for s in a_streams + b_streams:
            assert s.status == 200, 'GET /api/events: expected 200, got %s %r' % (s.status, s.body)
            assert s.retry == 2000, 'expected retry: 2000 first, got %r' % s.retry
            ctype = (s.headers.get('content-type') or [''])[0]
            assert ctype.split(';')[0].strip() == 'text/event-stream', 'GET /api/events Content-Type %r' % ctype
            assert s.start_id == 0, 'a new user\'s stream should start at id 0, got %r' % s.start_id

        changes = mjs.Changes(a, 'fanout')
        first = changes.create()
        changes.create('second')
        changes.create('third \u00e9\u4e2d\U0001F600')
        changes.rename(first['id'], 'first renamed')
        changes.create()
        changes.rename(first['id'], 'first renamed again')
        changes.delete(changes.live[1])
        changes.rename(changes.live[-1])
        changes.delete(first['id'])
        changes.create()
        n = len(changes.expected)

        for i, s in enumerate(a_streams):
            mjs.assert_events_match(s.wait_count(n, WAIT), changes.expected, 1, 'A stream %d' % i)

        # Sync point for B: its own change must be the only event its streams see.
        b_conv = b.create_conversation('b only')
        for i, s in enumerate(b_streams):
            s.wait_count(1, WAIT)
            mjs.assert_events_match(s.events(), [('conversation.created', b_conv)], 1, 'B stream %d' % i)

        # Sync point for A: one more change of A's, and nothing else in between.
        changes.rename(changes.live[-1], 'last')
        for i, s in enumerate(a_streams):
            s.wait_count(n + 1, WAIT)
            mjs.assert_events_match(s.events(), changes.expected, 1, 'A stream %d' % i)

        assert mjs.db_event_seq(a.user_id) == n + 1 and mjs.db_event_seq(b.user_id) == 1
        for s in a_streams + b_streams:
            assert not s.closed, 'a stream ended: %s' % s.close_reason


@mjs.timeout(90)
def test_events_too_big_for_a_notification_reach_every_stream_in_order():
    """An event over ~8 kB goes out as a notification without data and each responder
    reads the row (several at once, in one query): every stream still gets all of them,
    in order, with REST's data."""
    with ExitStack() as stack:
        a, b = signed_up(stack), signed_up(stack)
        a_streams = open_streams(stack, a)
        b_stream = stack.enter_context(mjs.SSE(b))
        sent = []
        for i in range(6):
            cid = a.create_conversation('big %d' % i)['id']
            size = 9000 if i % 2 == 0 else 20   # big and small ones interleaved
            content = ('%d\u00e9' % i) * (size // 2)
            sent.append((cid, mjs.send_message(a, cid, content, 'fake:echo:tps=0')))
        finals = [mjs.wait_final(a, cid, s['assistant_message']['id'], WAIT) for cid, s in sent]
        head = mjs.db_event_seq(a.user_id)
        for i, s in enumerate(a_streams):
            events = s.wait_count(head, WAIT)
            mjs.assert_gapless(events, 1, 'A stream %d' % i)
            created = {e.json['id']: e.json for e in events if e.event == 'message.created'}
            for (cid, msg), final in zip(sent, finals):
                um = msg['user_message']
                assert created.get(um['id']) == um, 'A stream %d: message.created of %s differs from REST' % (
                    i, um['id'])
                assert final['content'] == 'user: %s\n' % um['content'], final
                last = mjs.message_events(events, final['id'])[-1]
                assert last.json == final, 'A stream %d: last event of reply %s differs from REST' % (i, final['id'])
                text = mjs.concat_deltas(mjs.deltas(events, final['id']), 0, 'A stream %d' % i)
                assert text == final['content'], 'A stream %d: deltas differ from REST' % i
        assert [(e.id, e.event) for e in a_streams[0].events()] == [(e.id, e.event) for e in a_streams[2].events()]
        mine = b.create_conversation('b only')
        b_stream.wait_count(1, WAIT)
        mjs.assert_events_match(b_stream.events(), [('conversation.created', mine)], 1, 'B stream')

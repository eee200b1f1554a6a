"""
A slow tab never delays another: one stream of a user stops reading (a tiny
receive buffer, never read) while ~6 MB of events are written — more than
the kernel's socket buffers between it and the hub hold, so the hub itself
sees the backlog; the user's other stream still gets every event promptly
and in order. The stalled one, read afterwards, holds a gapless prefix of
the events (all of them, or fewer when the server dropped it — the browser
would reconnect with Last-Event-ID).
"""

import time
from contextlib import ExitStack

import mjs

WRITERS = 8
RENAMES_EACH = 800          # 6,400 events of about 930 bytes: ~6 MB, more than kernel buffers hold
PROMPT = 20                 # seconds after the last write by which every event must have arrived


def long_title(tag):
    """200 characters, mostly 4-byte UTF-8, so each event carries ~800 bytes of title."""
    return tag + ' ' + '\U0001F600' * (199 - len(tag))


@mjs.timeout(300)
def test_a_stalled_stream_does_not_delay_the_users_other_streams():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        convs = [c.create_conversation('slow %d' % i)['id'] for i in range(WRITERS)]
        head = WRITERS

        normal = stack.enter_context(mjs.SSE(c))
        assert normal.status == 200 and normal.start_id == head, (normal.status, normal.start_id)
        stalled = stack.enter_context(mjs.SSE(c.same_session(), last_event_id=head, read=False, rcvbuf=4096))

        writers = [stack.enter_context(c.another_device()) for _ in range(WRITERS)]
        done_at = {}                    # title -> when REST answered

        def rename_many(i):
            w, cid = writers[i], convs[i]
            for k in range(RENAMES_EACH):
                title = long_title('w%d-%d' % (i, k))
                w.rename_conversation(cid, title)
                done_at[title] = time.monotonic()

        t0 = time.monotonic()
        mjs.run_parallel([lambda i=i: rename_many(i) for i in range(WRITERS)], 200, 'writers')
        writes_done = time.monotonic()
        total = WRITERS * RENAMES_EACH

        got = normal.wait_count(total, PROMPT)
        ids = [e.id for e in got]
        assert ids == list(range(head + 1, head + total + 1)), \
            'the normal stream\'s ids are not %d..%d: %s' % (head + 1, head + total, mjs.short(ids))
        lags = sorted(e.received_at - done_at.get(e.json['title'], e.received_at) for e in got)
        volume = sum(len(e.data.encode('utf-8')) for e in got)
        print('normal stream: %d events, %.1f MB in %.1fs of writes; last arrived %.2fs after the last write; '
              'lag p50 %.3fs, p99 %.3fs, max %.3fs' % (total, volume / 1e6, writes_done - t0,
                                                    got[-1].received_at - writes_done, lags[len(lags) // 2],
                                                    lags[int(len(lags) * 0.99)], lags[-1]))
        assert volume > 2e6, 'only %d bytes of event data; the test needs megabytes' % volume
        rows = mjs.db_events(c.user_id, head)
        assert [(e.id, e.event, e.json) for e in got] == [(r['seq'], r['type'], r['data']) for r in rows], \
            'the normal stream differs from mjs.events'

        # The stalled stream, read at last: a gapless prefix, or everything.
        stalled.start()
        stalled.wait_count_or_closed(total, 90)
        assert stalled.status == 200, 'the stalled stream: expected 200, got %s %r' % (stalled.status, stalled.body)
        s_ids = stalled.ids()
        assert s_ids == list(range(head + 1, head + 1 + len(s_ids))), \
            'the stalled stream has gaps or duplicates: %s' % mjs.short(s_ids)
        from_db = [(r['seq'], r['type'], r['data']) for r in rows]
        assert [(e.id, e.event, e.json) for e in stalled.events()] == from_db[:len(s_ids)], \
            'the stalled stream differs from mjs.events'
        if len(s_ids) < total:
            assert stalled.closed, 'the stalled stream stopped at %d of %d events but is still open' % (
                len(s_ids), total)
            print('stalled stream: dropped by the server after %d of %d events (%s)' % (
                len(s_ids), total, stalled.close_reason))
        else:
            print('stalled stream: buffers held all %d events; it was not dropped' % total)

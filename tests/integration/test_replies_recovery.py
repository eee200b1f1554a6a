"""
AI replies when things break: an upstream that never answers or stalls (the
worker's timeouts), a worker killed with SIGKILL mid-reply (the next worker
applies the recovery rule once the lease expires), and a responder killed with
SIGKILL while tabs stream (they reconnect through nginx to the other one with
Last-Event-ID and miss nothing).

These tests replace stack processes: the worker with one of short timeouts or
lease (mjs.worker_with, the stack's own worker again afterwards), and api-1
(restarted afterwards), so the stack is whole for the next test.
"""

from contextlib import ExitStack
import json
import time

import mjs

WAIT = 20


def setup(stack, title='recovery'):
    c = stack.enter_context(mjs.Client())
    c.signup()
    conv = c.create_conversation(title)
    return c, conv


def assert_final_event_matches(sse, mid, final):
    ev = mjs.wait_status_event(sse, mid, mjs.FINAL_STATUSES, WAIT)
    assert ev.json == final, 'final event %r differs from REST %s' % (ev, mjs.short(json.dumps(final)))
    events = sse.events()
    text = mjs.concat_deltas(mjs.deltas(events, mid), 0, 'stream')
    assert text == final['content'], 'stream text %r, REST %r' % (mjs.short(text), mjs.short(final['content']))
    return events


@mjs.timeout(60)
def test_upstream_without_a_first_token_fails_at_first_token_timeout():
    with ExitStack() as stack:
        stack.enter_context(mjs.worker_with(first_token_timeout='1s'))
        a, conv = setup(stack)
        s = stack.enter_context(mjs.SSE(a))
        t0 = time.monotonic()
        mid = mjs.send_message(a, conv['id'], 'hello?', 'fake:hang')['assistant_message']['id']
        mjs.wait_status_event(s, mid, 'pending', WAIT)
        final = mjs.wait_final(a, conv['id'], mid, 15)
        took = time.monotonic() - t0
        assert final['status'] == 'failed' and final['content'] == '', mjs.short(json.dumps(final))
        assert 'first_token_timeout' in final['error'] and 'no token' in final['error'], \
            'error %r should say the upstream sent no token in time' % final['error']
        assert 0.9 <= took <= 8, 'failed %.1fs after the send, first_token_timeout is 1s' % took
        assert mjs.statuses(assert_final_event_matches(s, mid, final), mid) == ['created', 'pending', 'failed']


@mjs.timeout(60)
def test_upstream_stalling_mid_reply_fails_at_idle_timeout_and_keeps_the_text():
    with ExitStack() as stack:
        stack.enter_context(mjs.worker_with(idle_timeout='1s'))
        a, conv = setup(stack)
        s = stack.enter_context(mjs.SSE(a))
        # one token at once, the next after 4 s: longer than idle_timeout
        mid = mjs.send_message(a, conv['id'], 'slow', 'fake:tps=0.25:tokens=3')['assistant_message']['id']
        final = mjs.wait_final(a, conv['id'], mid, 15)
        assert final['status'] == 'failed' and final['content'] == mjs.fake_tokens(1), mjs.short(json.dumps(final))
        assert 'idle_timeout' in final['error'], 'error %r should name idle_timeout' % final['error']
        events = assert_final_event_matches(s, mid, final)
        assert mjs.statuses(events, mid) == ['created', 'pending', 'streaming', 'failed'], mjs.statuses(events, mid)


def db_message(mid):
    return mjs.psql_json("""
        SELECT json_build_object('status', m.status, 'content', mjs.message_text(m), 'attempts', g.attempts,
                                 'state', g.state)
        FROM mjs.messages m JOIN mjs.generations g ON g.message_id = m.id WHERE m.id = :'p1'""", mid)


@mjs.timeout(90)
def test_worker_killed_mid_reply_the_next_worker_retries_or_fails_each_reply_keeping_the_text():
    with ExitStack() as stack:
        w = stack.enter_context(mjs.worker_with(lease_time='3s'))
        a, conv = setup(stack)
        conv2 = a.create_conversation('not started yet')
        s = stack.enter_context(mjs.SSE(a))
        streaming = mjs.send_message(a, conv['id'], 'long', 'fake:tps=50:tokens=500')['assistant_message']['id']
        # sent upstream, but the first token comes 3 s later
        waiting = mjs.send_message(a, conv2['id'], 'slow start', 'fake:delay=3:tps=50:tokens=20')['assistant_message']['id']
        mjs.wait_delta_chars(s, streaming, 40, WAIT)
        mjs.wait_status_event(s, waiting, 'pending', WAIT)

        mjs.kill9('worker')
        at_kill = {mid: db_message(mid) for mid in (streaming, waiting)}
        seen = s.events()
        seen_text = mjs.concat_deltas(mjs.deltas(seen, streaming), 0, 'stream before the kill')
        assert at_kill[streaming]['status'] == 'streaming' and at_kill[streaming]['content'].startswith(seen_text), \
            'at the kill: %s; the stream had shown %d chars' % (mjs.short(json.dumps(at_kill[streaming])), len(seen_text))
        assert at_kill[waiting]['status'] == 'pending' and at_kill[waiting]['content'] == '', \
            'at the kill, the slow reply should be pending without text: %s (machine too slow?)' % at_kill[waiting]
        assert all(m['state'] == 'running' and m['attempts'] == 1 for m in at_kill.values()), at_kill

        w.restore()                      # a new worker (the stack's own, default settings)
        failed = mjs.wait_final(a, conv['id'], streaming, 30)
        assert failed['status'] == 'failed' and 'interrupted' in failed['error'], mjs.short(json.dumps(failed))
        assert failed['content'] == at_kill[streaming]['content'], \
            'the text written before the kill must be kept as it was: %r vs %r' % (
                mjs.short(failed['content']), mjs.short(at_kill[streaming]['content']))
        assert failed['content'].startswith(seen_text) and len(failed['content']) < len(mjs.fake_tokens(500))

        retried = mjs.wait_final(a, conv2['id'], waiting, 30)
        assert retried['status'] == 'completed' and retried['error'] is None, mjs.short(json.dumps(retried))
        assert retried['content'] == mjs.fake_tokens(20), mjs.short(retried['content'])
        assert db_message(waiting)['attempts'] == 2, 'the reply with no text should have been started again'

        events = assert_final_event_matches(s, streaming, failed)
        assert mjs.statuses(events, streaming) == ['created', 'pending', 'streaming', 'failed'], \
            mjs.statuses(events, streaming)
        events = assert_final_event_matches(s, waiting, retried)
        assert mjs.statuses(events, waiting) == ['created', 'pending', 'streaming', 'completed'], \
            mjs.statuses(events, waiting)
        mjs.assert_gapless(events, s.start_id + 1, 'stream')


@mjs.timeout(90)
def test_stop_while_no_worker_runs_stops_queued_replies_at_once_and_running_ones_on_recovery():
    with ExitStack() as stack:
        w = stack.enter_context(mjs.worker_with(lease_time='3s'))
        a, conv = setup(stack)
        s = stack.enter_context(mjs.SSE(a))
        running = mjs.send_message(a, conv['id'], 'long', 'fake:tps=50:tokens=500')['assistant_message']['id']
        mjs.wait_delta_chars(s, running, 40, WAIT)
        mjs.kill9('worker')
        kept = mjs.psql_value("SELECT mjs.message_text(m) FROM mjs.messages m WHERE id = :'p1'", running)

        # No worker: a new reply stays queued, and its stop is immediate.
        queued = mjs.send_message(a, conv['id'], 'queued', 'fake:tps=50:tokens=5')['assistant_message']['id']
        r = a.post('/api/messages/%s/stop' % queued)
        assert r.status == 200 and r.json['status'] == 'stopped' and r.json['content'] == '', \
            'stop of a queued reply: expected 200 stopped, got %r' % r
        ev = mjs.wait_status_event(s, queued, mjs.FINAL_STATUSES, WAIT)
        assert ev.json == r.json, (ev, r.json)
        # The running one is only flagged: the worker that takes it over stops it.
        r = a.post('/api/messages/%s/stop' % running)
        assert r.status == 202 and r.json['status'] == 'streaming', 'stop with no worker: expected 202, got %r' % r

        w.restore()
        final = mjs.wait_final(a, conv['id'], running, 30)
        assert final['status'] == 'stopped' and final['content'] == kept, mjs.short(json.dumps(final))
        assert_final_event_matches(s, running, final)
        q = mjs.get_message(a, conv['id'], queued)
        assert q['status'] == 'stopped' and q['content'] == '', 'the stopped queued reply was run later: %r' % q


def open_streams_on_both_responders(stack, client, most=12):
    """Opens streams until each responder holds at least one; returns [(SSE, 'api-N')]."""
    streams = []
    count = {n: mjs.stream_fds(n) for n in ('api-1', 'api-2')}
    while len(streams) < most and not (any(n == 'api-1' for _, n in streams) and
                                       any(n == 'api-2' for _, n in streams)):
        s = stack.enter_context(mjs.SSE(client.same_session() if streams else client))
        now = {n: mjs.stream_fds(n) for n in count}
        grew = [n for n in count if now[n] - count[n]]
        assert len(grew) == 1, 'cannot tell which responder holds the stream: %r -> %r' % (count, now)
        streams.append((s, grew[0]))
        count = now
    names = [n for _, n in streams]
    assert 'api-1' in names and 'api-2' in names, 'nginx put all %d streams on one responder: %r' % (
        len(streams), names)
    return streams


@mjs.timeout(90)
def test_responder_killed_mid_reply_tabs_reconnect_to_the_other_and_miss_nothing():
    with ExitStack() as stack:
        stack.callback(mjs.start_api, 1)          # the stack whole again, whatever happens
        a, conv = setup(stack)
        streams = open_streams_on_both_responders(stack, a)
        first_id = streams[0][0].start_id + 1
        mid = mjs.send_message(a, conv['id'], 'survive this', 'fake:tps=50:tokens=200')['assistant_message']['id']
        for s, _ in streams:
            mjs.wait_delta_chars(s, mid, 40, WAIT)

        mjs.kill9('api-1')
        tabs = []                                 # per tab: the streams it had, in order
        for s, name in streams:
            if name == 'api-1':
                assert s.wait_closed(WAIT), 'a stream of the killed responder stayed open'
                again = stack.enter_context(mjs.SSE(a, last_event_id=s.events()[-1].id))
                assert again.status == 200, 'reconnect after the kill: %s %r' % (again.status, again.body)
                tabs.append((s, again))
            else:
                tabs.append((s,))
        final = mjs.wait_final(a, conv['id'], mid, 30)
        assert final['status'] == 'completed' and final['content'] == mjs.fake_tokens(200), mjs.short(json.dumps(final))
        for i, tab in enumerate(tabs):
            mjs.wait_status_event(tab[-1], mid, 'completed', WAIT)
            assert not tab[-1].closed, 'tab %d: stream ended: %s' % (i, tab[-1].close_reason)
            combined = [e for s in tab for e in s.events()]
            mjs.assert_gapless(combined, first_id, 'tab %d (%d streams)' % (i, len(tab)))
            text = mjs.concat_deltas(mjs.deltas(combined, mid), 0, 'tab %d' % i)
            assert text == final['content'], 'tab %d: %r' % (i, mjs.short(text))
            assert mjs.statuses(combined, mid) == ['created', 'pending', 'streaming', 'completed']
        assert any(len(tab) == 2 for tab in tabs) and any(len(tab) == 1 for tab in tabs)

        mjs.start_api(1)
        assert mjs.proc_pid('api-1'), 'api-1 did not restart'

"""
AI replies through the whole stack (nginx, mjs-api, the real mjs-worker, the
fake upstream): what every tab of the user sees while a reply streams, after a
refresh, after all tabs were closed, and when a tab presses stop.

A reply's text on a stream is its message.delta events put together by offset;
it must equal the content REST returns. Models are fake upstream knobs
(dev/fake_upstream/): "fake:tps=50:tokens=100" streams "tok " 100 times.
"""

from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
import json
import time
import urllib.request

import mjs

WAIT = 20


def setup(stack, title='replies'):
    c = stack.enter_context(mjs.Client())
    c.signup()
    conv = c.create_conversation(title)
    return c, conv


def fake_stats():
    with urllib.request.urlopen(mjs.env()['MJS_FAKE_URL'].rstrip('/') + '/stats', timeout=5) as r:
        return json.loads(r.read().decode('utf-8'))


def assert_reply_on_stream(events, sent, final, label):
    """The whole life of one reply as a stream that was open from before the send shows it."""
    um, am = sent['user_message'], sent['assistant_message']
    mine = [e for e in events if e.event != 'conversation.updated']
    created = [e for e in mine if e.event == 'message.created']
    assert [e.json for e in created] == [um, am], '%s: message.created events %r, expected %r' % (
        label, created, [um, am])
    assert created[0].id < created[1].id
    got = mjs.statuses(events, am['id'])
    assert got == ['created', 'pending', 'streaming', 'completed'], \
        '%s: status changes %r, expected created, pending, streaming, completed' % (label, got)
    evs = mjs.message_events(events, am['id'])
    kinds = [e.json['status'] if e.event != 'message.delta' else 'delta' for e in evs]
    first_delta, last_delta = kinds.index('delta'), len(kinds) - 1 - kinds[::-1].index('delta')
    assert kinds.index('streaming') < first_delta and last_delta < kinds.index('completed'), \
        '%s: deltas must come after streaming and before completed: %r' % (label, kinds)
    text = mjs.concat_deltas(mjs.deltas(events, am['id']), 0, label)
    assert text == final['content'], '%s: deltas make %r, REST content is %r' % (
        label, mjs.short(text), mjs.short(final['content']))
    assert evs[-1].event == 'message.updated' and evs[-1].json == final, \
        '%s: the last event of the reply %r differs from REST %r' % (label, evs[-1], final)


@mjs.timeout(90)
def test_reply_streams_to_every_stream_of_the_user_and_matches_rest():
    with ExitStack() as stack:
        a, conv = setup(stack)
        other = stack.enter_context(mjs.Client())
        other.signup()
        streams = {'A': stack.enter_context(mjs.SSE(a)),
                   'B': stack.enter_context(mjs.SSE(stack.enter_context(a.another_device()))),
                   'C': stack.enter_context(mjs.SSE(stack.enter_context(a.another_device())))}
        x = stack.enter_context(mjs.SSE(other))
        for name, s in streams.items():
            assert s.status == 200 and s.start_id == 1, '%s: status %s start %r' % (name, s.status, s.start_id)

        sent = mjs.send_message(a, conv['id'], 'hello \u00e9\U0001F600', 'fake:tps=50:tokens=100')
        um, am = sent['user_message'], sent['assistant_message']
        assert um['role'] == 'user' and um['status'] == 'completed' and um['content'] == 'hello \u00e9\U0001F600', um
        assert am['role'] == 'assistant' and am['status'] == 'created' and am['content'] == '', am
        assert am['model'] == 'fake:tps=50:tokens=100', am

        final = mjs.wait_final(a, conv['id'], am['id'], 30)
        assert final['status'] == 'completed' and final['error'] is None, final
        assert final['content'] == mjs.fake_tokens(100), 'REST content %r' % mjs.short(final['content'])
        for name, s in streams.items():
            mjs.wait_status_event(s, am['id'], 'completed', WAIT)
        for name, s in streams.items():
            events = s.events()
            mjs.assert_gapless(events, 2, name)
            assert_reply_on_stream(events, sent, final, 'stream ' + name)
        ref = [(e.id, e.event, e.json) for e in streams['A'].events()]
        for name in 'BC':
            got = [(e.id, e.event, e.json) for e in streams[name].events()]
            assert got == ref, 'stream %s differs from stream A' % name
        assert [e.id for e in streams['A'].events()][-1] == mjs.db_event_seq(a.user_id)

        # The other user: its own change is the only event its stream ever sees.
        mine = other.create_conversation('other user')
        x.wait_count(1, WAIT)
        mjs.assert_events_match(x.events(), [('conversation.created', mine)], 1, 'other user')
        for s in list(streams.values()) + [x]:
            assert not s.closed, 'a stream ended: %s' % s.close_reason


@mjs.timeout(90)
def test_refresh_mid_stream_continues_exactly_where_the_tab_left_off():
    with ExitStack() as stack:
        a, conv = setup(stack)
        old = mjs.SSE(a)
        try:
            sent = mjs.send_message(a, conv['id'], 'long one', 'fake:tps=50:tokens=200')
            mid = sent['assistant_message']['id']
            mjs.wait_delta_chars(old, mid, 40, WAIT)
        finally:
            old.close()                                   # the tab refreshes
        seen = old.events()
        last_id = seen[-1].id
        seen_text = mjs.concat_deltas(mjs.deltas(seen, mid), 0, 'old tab')

        # The browser's reconnect (Last-Event-ID), and a fresh tab that loads over REST.
        resumed = stack.enter_context(mjs.SSE(a, last_event_id=last_id))
        fresh = stack.enter_context(mjs.SSE(a))
        loaded = mjs.get_message(a, conv['id'], mid)
        full = mjs.fake_tokens(200)
        assert loaded['status'] == 'streaming' and 0 < len(loaded['content']) < len(full), \
            'the refresh must happen mid-stream (machine too slow?): %s' % mjs.short(json.dumps(loaded))
        assert loaded['content'].startswith(seen_text), 'REST lost text the old tab had shown'

        final = mjs.wait_final(a, conv['id'], mid, 30)
        assert final['status'] == 'completed' and final['content'] == full, mjs.short(json.dumps(final))
        for s in (resumed, fresh):
            mjs.wait_status_event(s, mid, 'completed', WAIT)

        got = resumed.events()
        mjs.assert_gapless(got, last_id + 1, 'resumed stream')
        rest = mjs.concat_deltas(mjs.deltas(got, mid), len(seen_text), 'resumed stream')
        assert seen_text + rest == final['content'], 'old tab + resumed stream make %r' % mjs.short(seen_text + rest)
        assert mjs.statuses(got, mid) == ['completed'], mjs.statuses(got, mid)

        f_events = fresh.events()
        mjs.assert_gapless(f_events, fresh.start_id + 1, 'fresh stream')
        f_deltas = mjs.deltas(f_events, mid)
        assert f_deltas and f_deltas[-1].json['offset'] + len(f_deltas[-1].json['text']) > len(loaded['content']), \
            'the fresh tab got no text after what it loaded'
        text = mjs.apply_deltas(loaded['content'], f_deltas, 'fresh tab')
        assert text == final['content'], 'REST + fresh stream make %r' % mjs.short(text)


@mjs.timeout(90)
def test_reply_finishes_with_every_tab_closed_and_reopened_tabs_see_it_all():
    with ExitStack() as stack:
        a, conv = setup(stack)
        tab = mjs.SSE(a)
        try:
            sent = mjs.send_message(a, conv['id'], 'close all tabs', 'fake:tps=50:tokens=100')
            mid = sent['assistant_message']['id']
            mjs.wait_delta_chars(tab, mid, 1, WAIT)
        finally:
            tab.close()
        seen = tab.events()
        last_id = seen[-1].id
        seen_text = mjs.concat_deltas(mjs.deltas(seen, mid), 0, 'closed tab')
        state = mjs.psql_value("SELECT status FROM mjs.messages WHERE id = :'p1'", mid)
        assert state == 'streaming', 'expected the reply still streaming when the last tab closed, got %r' % state

        # Nobody watches: the reply goes on in the worker.
        mjs.wait_until(lambda: mjs.psql_value("SELECT state FROM mjs.generations WHERE message_id = :'p1'",
                                              mid) == 'done', 30, 'the generation to finish with no tab open')

        again = stack.enter_context(mjs.SSE(a, last_event_id=last_id))
        final = mjs.get_message(a, conv['id'], mid)
        assert final['status'] == 'completed' and final['error'] is None, final
        assert final['content'] == mjs.fake_tokens(100), mjs.short(final['content'])
        ev = mjs.wait_status_event(again, mid, 'completed', WAIT)
        assert ev.json == final, 'replayed final event %r differs from REST %r' % (ev, final)
        got = again.events()
        mjs.assert_gapless(got, last_id + 1, 'reopened tab')
        rest = mjs.concat_deltas(mjs.deltas(got, mid), len(seen_text), 'reopened tab')
        assert seen_text + rest == final['content']
        # a brand-new tab: REST has it all
        listed = mjs.list_messages(stack.enter_context(a.another_device()), conv['id'])
        assert [m['id'] for m in listed] == [sent['user_message']['id'], mid] and listed[1] == final, listed


@mjs.timeout(90)
def test_stop_from_another_tab_stops_within_a_second_and_keeps_the_text():
    with ExitStack() as stack:
        a, conv = setup(stack)
        other_tab = stack.enter_context(a.another_device())
        streams = [stack.enter_context(mjs.SSE(a)), stack.enter_context(mjs.SSE(other_tab))]
        sent = mjs.send_message(a, conv['id'], 'stop me', 'fake:tps=50:tokens=500')
        mid = sent['assistant_message']['id']
        mjs.wait_delta_chars(streams[0], mid, 40, WAIT)

        # A generating message cannot be edited or deleted (stop it first).
        r = other_tab.patch('/api/messages/' + mid, {'content': 'edited'})
        mjs.assert_error(r, 409, 'conflict')
        r = other_tab.delete('/api/messages/' + mid)
        mjs.assert_error(r, 409, 'conflict')
        m = mjs.get_message(a, conv['id'], mid)
        assert m['status'] == 'streaming' and 'edited' not in m['content'], m

        abandoned = fake_stats()['streams_abandoned']
        t0 = time.monotonic()
        r = other_tab.post('/api/messages/%s/stop' % mid)
        assert r.status in (200, 202), 'stop: expected 200 or 202, got %r' % r
        assert r.json['id'] == mid, r
        stopped = [mjs.wait_status_event(s, mid, mjs.FINAL_STATUSES, WAIT) for s in streams]
        for i, ev in enumerate(stopped):
            assert ev.json['status'] == 'stopped', 'stream %d: %r' % (i, ev)
            assert ev.received_at - t0 <= 1.0, 'stream %d saw stopped %.2fs after the stop request' % (
                i, ev.received_at - t0)
        final = mjs.get_message(a, conv['id'], mid)
        assert final['status'] == 'stopped' and final == stopped[0].json, (final, stopped[0])
        assert 0 < len(final['content']) < len(mjs.fake_tokens(500)), 'text kept: %r' % mjs.short(final['content'])
        assert final['content'].startswith('tok tok ') and set(final['content'].split()) == {'tok'}

        # The worker dropped the upstream transfer.
        mjs.wait_until(lambda: fake_stats()['streams_abandoned'] > abandoned, 10,
                       'the upstream stream to be abandoned after the stop')
        # Sync point: a later change of the user reaches both tabs; no delta of the
        # reply came after stopped, and the deltas are exactly the text kept.
        conv2 = a.create_conversation('after stop')
        for i, s in enumerate(streams):
            s.wait_for(lambda e: e.event == 'conversation.created' and e.json['id'] == conv2['id'], WAIT)
            events = s.events()
            late = [e for e in mjs.deltas(events, mid) if e.id > stopped[i].id]
            assert not late, 'stream %d: deltas after stopped: %r' % (i, late)
            text = mjs.concat_deltas(mjs.deltas(events, mid), 0, 'stream %d' % i)
            assert text == final['content'], 'stream %d: deltas %r, REST %r' % (
                i, mjs.short(text), mjs.short(final['content']))
            assert mjs.statuses(events, mid)[-1] == 'stopped'
        assert mjs.get_message(a, conv['id'], mid) == final, 'the stopped message changed later'

        # Stopping what is no longer generating is a conflict, and changes nothing.
        with mjs.unchanged(a.user_id, what='a stop of a stopped message'):
            r = a.post('/api/messages/%s/stop' % mid)
        mjs.assert_error(r, 409, 'conflict')
        done = mjs.send_message(a, conv['id'], 'short', 'fake:tps=0:tokens=3')
        done_id = done['assistant_message']['id']
        assert mjs.wait_final(a, conv['id'], done_id)['status'] == 'completed'
        with mjs.unchanged(a.user_id, what='a stop of a completed message'):
            r = other_tab.post('/api/messages/%s/stop' % done_id)
        mjs.assert_error(r, 409, 'conflict')
        # Once finished, it can be edited and deleted again.
        edited = a.patch('/api/messages/' + mid, {'content': 'edited after stop'}).expect(200)
        assert edited['content'] == 'edited after stop' and edited['status'] == 'stopped', edited
        a.delete('/api/messages/' + done_id).expect(204)


def failed_reply(model, tokens_seen):
    """Sends one reply with model; returns (final REST message, the stream's events)."""
    with ExitStack() as stack:
        a, conv = setup(stack)
        s = stack.enter_context(mjs.SSE(a))
        sent = mjs.send_message(a, conv['id'], 'this will fail', model)
        mid = sent['assistant_message']['id']
        final = mjs.wait_final(a, conv['id'], mid, 30)
        ev = mjs.wait_status_event(s, mid, mjs.FINAL_STATUSES, WAIT)
        assert ev.json == final, 'final event %r differs from REST %r' % (ev, final)
        events = s.events()
        assert final['status'] == 'failed', 'expected failed, got %s' % mjs.short(json.dumps(final))
        assert isinstance(final['error'], str) and final['error'].strip(), 'failed without an error: %r' % final
        assert final['content'] == mjs.fake_tokens(tokens_seen), 'text kept %r, expected %d tokens' % (
            mjs.short(final['content']), tokens_seen)
        assert mjs.concat_deltas(mjs.deltas(events, mid), 0, 'stream') == final['content']
        got = mjs.statuses(events, mid)
        assert got[0] == 'created' and got[-1] == 'failed' and got.count('failed') == 1, got
        return final, events


@mjs.timeout(60)
def test_upstream_http_500_fails_the_reply_with_the_upstream_error():
    final, _ = failed_reply('fake:fail=500', 0)
    err = final['error']
    assert '500' in err and 'fake upstream failure' in err, 'error %r should name the status and the upstream message' % err


@mjs.timeout(60)
def test_upstream_dropping_mid_stream_fails_the_reply_and_keeps_the_text():
    final, events = failed_reply('fake:tps=50:tokens=20:fail_after=7', 7)
    err = final['error']
    assert 'upstream connection broke before the reply finished' in err and 'text so far is kept' in err, \
        'error %r should say the upstream connection broke mid-reply and the text is kept' % err


@mjs.timeout(60)
def test_stop_before_the_first_token_stops_at_once_with_no_text():
    with ExitStack() as stack:
        a, conv = setup(stack)
        s = stack.enter_context(mjs.SSE(a))
        # sent upstream; the first token would come 3 s later
        mid = mjs.send_message(a, conv['id'], 'slow start', 'fake:delay=3:tokens=5')['assistant_message']['id']
        mjs.wait_status_event(s, mid, 'pending', WAIT)
        t0 = time.monotonic()
        r = a.post('/api/messages/%s/stop' % mid)
        assert r.status in (200, 202), 'stop: expected 200 or 202, got %r' % r
        ev = mjs.wait_status_event(s, mid, mjs.FINAL_STATUSES, WAIT)
        assert ev.json['status'] == 'stopped' and ev.json['content'] == '', ev
        assert ev.received_at - t0 <= 1.0, 'stopped %.2fs after the stop request' % (ev.received_at - t0)
        final = mjs.get_message(a, conv['id'], mid)
        assert final == ev.json, (final, ev)
        assert mjs.statuses(s.events(), mid) == ['created', 'pending', 'stopped'] and not mjs.deltas(s.events(), mid)


@mjs.timeout(90)
def test_the_upstream_gets_each_conversation_so_far_in_order():
    """Replies started together (the worker reads their conversations in one query) each
    send their own conversation: earlier messages oldest first, the new one last."""
    with ExitStack() as stack:
        a, _ = setup(stack)
        convs = [a.create_conversation('echo %d' % i)['id'] for i in range(4)]
        first = [mjs.send_message(a, cid, 'first %d \u00e9' % i, 'fake:echo')['assistant_message']['id']
                 for i, cid in enumerate(convs)]
        for i, (cid, mid) in enumerate(zip(convs, first)):
            m = mjs.wait_final(a, cid, mid, WAIT)
            assert m['status'] == 'completed' and m['content'] == 'user: first %d \u00e9\n' % i, m
        second = [mjs.send_message(a, cid, 'second %d' % i, 'fake:echo:tps=0')['assistant_message']['id']
                  for i, cid in enumerate(convs)]
        for i, (cid, mid) in enumerate(zip(convs, second)):
            m = mjs.wait_final(a, cid, mid, WAIT)
            want = 'user: first %d \u00e9\nassistant: user: first %d \u00e9\n\nuser: second %d\n' % (i, i, i)
            assert m['status'] == 'completed' and m['content'] == want, \
                'conversation %d sent %r, expected %r' % (i, m['content'], want)


@mjs.timeout(90)
def test_the_history_sent_upstream_is_capped_in_bytes_newest_kept():
    """context_max_bytes = 64k: of three 40 KB user messages and their short replies, the
    echo of the third holds it and the reply before it, not the older ones; over 40
    conversations at once (more than one history query) each sends its own."""
    with ExitStack() as stack:
        stack.enter_context(mjs.apis_with(max_replies_per_user='100'))   # 40 replies at once
        a, _ = setup(stack)
        stack.enter_context(mjs.worker_with(context_max_bytes='64k'))
        big = lambda tag: tag + ' ' + 'x' * 40000
        convs = [a.create_conversation('capped %d' % i)['id'] for i in range(40)]
        for cid in convs[:1]:
            for tag in ('m1', 'm2'):
                mid = mjs.send_message(a, cid, big(tag), 'fake:tokens=1')['assistant_message']['id']
                assert mjs.wait_final(a, cid, mid, WAIT)['status'] == 'completed'
        sent = [mjs.send_message(a, cid, big('m3-%d' % i), 'fake:echo:tps=0')['assistant_message']['id']
                for i, cid in enumerate(convs)]
        for i, (cid, mid) in enumerate(zip(convs, sent)):
            m = mjs.wait_final(a, cid, mid, WAIT)
            assert m['status'] == 'completed', m
            assert m['content'].endswith('user: %s\n' % big('m3-%d' % i)), 'conversation %d: not its newest' % i
        first = mjs.wait_final(a, convs[0], sent[0], WAIT)['content']
        assert 'assistant: tok \n' in first and 'm2 x' not in first and 'm1 x' not in first, \
            'the capped history: %r' % [l[:20] for l in first.split('\n')]


@mjs.timeout(90)
def test_a_reply_is_cut_at_its_length_duration_or_token_limit_and_says_so():
    """reply_max_chars: the text stops there (the upstream transfer is abandoned), the
    reply is completed with an error that says it was cut; reply_max_duration likewise;
    reply_max_tokens goes upstream as max_tokens, and the upstream's "length" stop marks
    the reply as cut too."""
    with ExitStack() as stack:
        a, _ = setup(stack)
        cid = a.create_conversation('limits')['id']
        with mjs.worker_with(reply_max_chars='50'):
            abandoned = fake_stats()['streams_abandoned']
            mid = mjs.send_message(a, cid, 'long', 'fake:tps=200:tokens=400')['assistant_message']['id']
            m = mjs.wait_final(a, cid, mid, WAIT)
            assert m['status'] == 'completed' and m['content'] == ('tok ' * 13)[:50], m
            assert m['error'].startswith('cut:') and 'reply_max_chars' in m['error'], m
            mjs.wait_until(lambda: fake_stats()['streams_abandoned'] > abandoned, 10,
                           'the upstream transfer to be abandoned')
        with mjs.worker_with(reply_max_duration='2s'):
            mid = mjs.send_message(a, cid, 'slow', 'fake:tps=5:tokens=100')['assistant_message']['id']
            m = mjs.wait_final(a, cid, mid, WAIT)
            assert m['status'] == 'completed' and 0 < len(m['content']) < 400, m
            assert m['error'].startswith('cut:') and 'reply_max_duration' in m['error'], m
        with mjs.worker_with(reply_max_tokens='3'):
            mid = mjs.send_message(a, cid, 'short', 'fake:tokens=10')['assistant_message']['id']
            m = mjs.wait_final(a, cid, mid, WAIT)
            assert m['status'] == 'completed' and m['content'] == 'tok ' * 3, m
            assert m['error'].startswith('cut:') and 'max_tokens' in m['error'], m
        mid = mjs.send_message(a, cid, 'normal', 'fake:tokens=10')['assistant_message']['id']
        m = mjs.wait_final(a, cid, mid, WAIT)
        assert m['status'] == 'completed' and m['content'] == 'tok ' * 10 and m['error'] is None, m


@mjs.timeout(90)
def test_many_replies_ending_together_all_complete_with_their_whole_text():
    """A flush writes a few final statuses at a time (the rest wait a tick, their text
    goes at once): replies that end together still each end completed, with the whole
    text, on every stream, after all their deltas."""
    with ExitStack() as stack:
        stack.enter_context(mjs.apis_with(max_replies_per_user='100'))   # 40 replies at once
        a, _ = setup(stack)
        s = stack.enter_context(mjs.SSE(a))
        n = 40
        convs = [a.create_conversation('together %d' % i)['id'] for i in range(n)]
        tabs = [stack.enter_context(a.same_session()) for _ in range(n)]

        def send(i):    # all at once, from as many tabs; each reply's first token comes 2 s later
            return mjs.send_message(tabs[i], convs[i], 'go', 'fake:delay=2:tps=0:tokens=%d' % (40 + i))
        with ThreadPoolExecutor(n) as pool:
            sent = [(convs[i], r['assistant_message']['id']) for i, r in enumerate(pool.map(send, range(n)))]
        finals = [mjs.wait_final(a, cid, mid, WAIT) for cid, mid in sent]
        for i, m in enumerate(finals):
            assert m['status'] == 'completed' and m['content'] == mjs.fake_tokens(40 + i), \
                'reply %d: %s %r' % (i, m['status'], mjs.short(m['content']))
        for m in finals:
            ev = mjs.wait_status_event(s, m['id'], 'completed', WAIT)
            assert ev.json == m, (ev.json, m)
        events = s.events()
        mjs.assert_gapless(events, 2, 'stream')     # opened after setup's conversation.created
        for m in finals:
            assert mjs.concat_deltas(mjs.deltas(events, m['id']), 0, 'stream') == m['content']
            last = mjs.message_events(events, m['id'])[-1]
            assert last.event == 'message.updated' and last.json == m, \
                'the last event of reply %s is %r, not its completed status' % (m['id'], last)
        # the chunks of finished replies are deleted a few replies per flush
        chunks_left = ("SELECT count(*) FROM mjs.message_chunks c JOIN mjs.messages m ON m.id = c.message_id "
                       "WHERE m.user_id = :'p1'")
        mjs.wait_until(lambda: mjs.psql_value(chunks_left, a.user_id) == '0', WAIT,
                       'the chunks of the finished replies to be deleted')

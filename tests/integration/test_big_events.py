"""
Every event the API accepted reaches every tab, however large it is and however
far behind the tab is: an event bigger than stream_queue_max (256 KiB by
default) goes out alone on an empty queue, and a replay is paced by the queue,
event by event, instead of queueing a page at once. Before, both closed the
stream, and the browser's reconnection replayed the same thing and was closed
again, forever.
"""

import mjs

CJK = '\u5199\u4e00\u4e2a\u5f88\u957f\u7684\u6545\u4e8b'      # 3 bytes each in UTF-8


def long_title(tag):
    """200 characters, mostly 4-byte UTF-8: an event of ~900 bytes."""
    return tag + ' ' + '\U0001F600' * (199 - len(tag))


@mjs.timeout(120)
def test_a_message_at_the_content_limit_in_a_multibyte_script_reaches_every_tab():
    with mjs.Client() as a:
        a.signup()
        cid = a.create_conversation('long')['id']
        head = a.me()['event_seq']
        live = [mjs.SSE(a), mjs.SSE(a.another_device())]
        try:
            content = (CJK * (200000 // len(CJK) + 1))[:200000]          # the limit: 200,000 characters
            assert len(content.encode('utf-8')) == 600000
            sent = mjs.send_message(a, cid, content, 'fake:tokens=3')
            uid = sent['user_message']['id']
            after = a.rename_conversation(cid, 'after the long one')
            for s in live:
                e = s.wait_for(lambda e: e.event == 'message.created' and e.json['id'] == uid, 30)
                assert e.json['content'] == content, 'the tab got the message cut or changed'
                s.wait_for(lambda e: e.event == 'conversation.updated' and e.json['title'] == after['title'], 30)
                assert not s.closed, 'the stream was closed: %s' % s.close_reason
                ids = s.ids()
                assert ids == list(range(head + 1, head + len(ids) + 1)), 'gap or duplicate: %s' % mjs.short(ids)
            # A tab that comes back from before the message replays it and goes on.
            back = mjs.SSE(a, last_event_id=head)
            try:
                e = back.wait_for(lambda e: e.event == 'message.created' and e.json['id'] == uid, 30)
                assert e.json['content'] == content
                back.wait_for(lambda e: e.event == 'conversation.updated' and e.json['title'] == after['title'], 30)
                assert not back.closed, 'the replaying stream was closed: %s' % back.close_reason
            finally:
                back.close()
        finally:
            for s in live:
                s.close()


@mjs.timeout(180)
def test_a_tab_thousands_of_events_behind_replays_them_all_on_one_connection():
    n = 3000
    with mjs.Client() as a:
        a.signup()
        cid = a.create_conversation('busy')['id']
        head = a.me()['event_seq']
        writers = [a.another_device() for _ in range(4)]

        def rename(w, i0):
            for i in range(i0, n, len(writers)):
                w.rename_conversation(cid, long_title('r%d' % i))
        mjs.run_parallel([lambda w=w, i=i: rename(w, i) for i, w in enumerate(writers)], 150, 'writers')
        last = head + n
        assert mjs.db_event_seq(a.user_id) == last
        behind = mjs.SSE(a, last_event_id=head)
        try:
            got = behind.wait_count(n, 60)
            ids = [e.id for e in got]
            assert ids == list(range(head + 1, last + 1)), 'not %d..%d: %s' % (head + 1, last, mjs.short(ids))
            assert sum(len(e.data.encode('utf-8')) for e in got) > 2 * 256 * 1024, 'the backlog was too small to test'
            assert not behind.closed, 'the stream was closed: %s' % behind.close_reason
            # and it goes on live
            a.rename_conversation(cid, 'live again')
            e = behind.wait_id(last + 1, 20)
            assert e.json['title'] == 'live again'
        finally:
            behind.close()

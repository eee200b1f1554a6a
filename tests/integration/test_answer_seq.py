"""
Every REST answer says which point of the user's event stream it reflects
(the Mjs-Event-Seq header, mjs-events(7)): a read holds exactly the events up to
that seq, a write's answer is the state after its own last event. This is what
lets a tab merge a list it loaded with the events that arrived meanwhile.
"""

import threading
import time
import uuid

import mjs

SEQ = 'Mjs-Event-Seq'


def seq_of(resp):
    v = resp.headers.get(SEQ)
    assert v is not None and v.isdigit(), '%s: expected a %s header, got %r' % (resp, SEQ, v)
    return int(v)


def event_at(user_id, seq):
    rows = mjs.db_events(user_id, seq - 1)
    assert rows and rows[0]['seq'] == seq, 'no event %d in mjs.events' % seq
    return rows[0]


def task_at(user_id, upto, tid):
    """The task as its events up to seq upto left it (None when in the trash)."""
    state = None
    for e in mjs.db_events(user_id, 0):
        if e['seq'] > upto or e['data'].get('id') != tid:
            continue
        state = None if e['type'] == 'task.deleted' else e['data']
    return state


def test_every_answer_carries_the_seq_of_the_state_it_shows():
    with mjs.Client() as a, mjs.Client() as b:
        a.signup()
        b.signup()
        uid = a.user_id

        me = a.get('/api/me')
        assert seq_of(me) == me.json['event_seq'] == 0, me

        r = a.post('/api/conversations', {'title': 'first'})
        conv = r.expect(201)
        assert seq_of(r) == 1 and event_at(uid, 1)['data'] == conv, (r, event_at(uid, 1))

        r = a.post('/api/conversations/%s/messages' % conv['id'], {'content': 'hi', 'model': 'fake:tokens=2'})
        sent = r.expect(201)
        # message.created twice, conversation.updated: the answer is the state after the third.
        assert seq_of(r) == 4, r
        assert [e['type'] for e in mjs.db_events(uid, 1)][:3] == ['message.created', 'message.created',
                                                                 'conversation.updated']
        mjs.wait_final(a, conv['id'], sent['assistant_message']['id'])

        head = mjs.db_event_seq(uid)
        for path in ('/api/conversations', '/api/conversations/%s/messages' % conv['id'], '/api/tasks',
                     '/api/tasks?deleted=1', '/api/me'):
            r = a.get(path)
            r.expect(200)
            assert seq_of(r) == head, '%s: expected %s %d, got %r' % (path, SEQ, head, r.headers.get(SEQ))

        r = a.patch('/api/conversations/' + conv['id'], {'title': 'renamed'})
        renamed = r.expect(200)
        assert seq_of(r) == head + 1 and event_at(uid, head + 1)['data'] == renamed, r

        user_msg = sent['user_message']['id']
        r = a.patch('/api/messages/' + user_msg, {'content': 'hello'})
        edited = r.expect(200)
        assert seq_of(r) == head + 2 and event_at(uid, head + 2)['data'] == edited, r

        r = a.delete('/api/messages/' + user_msg)
        assert r.status == 204 and seq_of(r) == head + 3, r
        assert event_at(uid, head + 3)['type'] == 'message.deleted'

        r = a.post('/api/tasks', {'kind': 'image', 'prompt': 'fake:steps=1 a cat'})
        task = r.expect(201)
        seq = seq_of(r)
        assert event_at(uid, seq) == {'seq': seq, 'type': 'task.created', 'data': task}, r

        # The worker moves the task on meanwhile: the answer is the task as of its seq.
        r = a.get('/api/tasks/' + task['id'])
        got = r.expect(200)
        assert seq_of(r) >= seq and task_at(uid, seq_of(r), task['id']) == got, r

        r = a.patch('/api/tasks/' + task['id'], {'blurred': True})
        r.expect(200)
        blurred_at = seq_of(r)
        assert event_at(uid, blurred_at)['type'] == 'task.updated' and \
            event_at(uid, blurred_at)['data']['blurred'] is True, r
        # Nothing to change: no event, and the answer says the seq it was read at.
        r = a.patch('/api/tasks/' + task['id'], {'blurred': True})
        got = r.expect(200)
        assert seq_of(r) >= blurred_at and task_at(uid, seq_of(r), task['id']) == got, r

        r = a.delete('/api/tasks/' + task['id'])
        assert r.status == 204 and event_at(uid, seq_of(r))['type'] == 'task.deleted', r
        r = a.post('/api/tasks/%s/restore' % task['id'])
        restored = r.expect(200)
        assert event_at(uid, seq_of(r)) == {'seq': seq_of(r), 'type': 'task.restored', 'data': restored}, r

        # Errors say nothing about the stream; another user's seq is its own.
        r = a.get('/api/conversations/%s/messages' % uuid.uuid4())
        mjs.assert_error(r, 404, 'not_found')
        assert r.headers.get(SEQ) is None, r
        r = b.get('/api/conversations')
        assert r.expect(200) == {'items': [], 'next': None} and seq_of(r) == 0, r


def replay(rows, upto, cid):
    """The conversation list and cid's messages after applying events 1..upto."""
    convs, msgs = {}, {}
    for e in rows:
        if e['seq'] > upto:
            break
        t, d = e['type'], e['data']
        if t in ('conversation.created', 'conversation.updated'):
            convs[d['id']] = d
        elif t == 'conversation.deleted':
            convs.pop(d['id'], None)
        elif d.get('conversation_id', d.get('id')) != cid and t.startswith('message.'):
            continue
        elif t in ('message.created', 'message.updated'):
            msgs[d['id']] = dict(d)
        elif t == 'message.deleted':
            msgs.pop(d['id'], None)
        elif t == 'message.delta':
            m = msgs[d['message_id']]
            assert d['offset'] <= len(m['content']), 'event %d: hole' % e['seq']
            m['content'] = m['content'][:d['offset']] + d['text']
    conv_list = sorted(convs.values(), key=lambda c: (c['updated_at'], c['id']), reverse=True)
    msg_list = sorted(msgs.values(), key=lambda m: (m['created_at'], m['id']))
    return conv_list, msg_list


@mjs.timeout(120)
def test_a_list_read_while_others_write_holds_exactly_the_events_up_to_its_seq():
    # forty replies in a row, faster than they finish: above the default per-user cap
    with mjs.apis_with(max_replies_per_user='100'), mjs.Client() as a:
        a.signup()
        uid = a.user_id
        cid = a.create_conversation('busy')['id']
        writer = a.another_device()
        reader = a.another_device()
        stop = threading.Event()
        errors = []

        def write():
            try:
                others = []
                for i in range(40):
                    if stop.is_set():
                        break
                    mjs.send_message(writer, cid, 'message %d' % i, 'fake:tps=200:tokens=8')
                    if i % 3 == 0:
                        others.append(writer.create_conversation('c%d' % i)['id'])
                    if i % 4 == 1 and others:
                        writer.rename_conversation(others[-1], 'renamed %d' % i)
                    if i % 5 == 2 and others:
                        writer.delete_conversation(others.pop(0))
                    if i % 6 == 3:
                        items = mjs.list_messages(writer, cid)
                        done = [m for m in items if m['role'] == 'user']
                        writer.delete('/api/messages/' + done[0]['id'])
            except Exception as e:  # reported by the main thread
                errors.append(e)

        t = threading.Thread(target=write)
        t.start()
        answers = []
        deadline = time.time() + 60
        try:
            while (t.is_alive() or len(answers) < 20) and time.time() < deadline:
                r = reader.get('/api/conversations?limit=200')
                answers.append(('convs', seq_of(r), r.expect(200)['items']))
                r = reader.get('/api/conversations/%s/messages?limit=200' % cid)
                answers.append(('msgs', seq_of(r), r.expect(200)['items']))
        finally:
            stop.set()
            t.join(30)
        assert not errors, errors
        assert len(answers) >= 20, 'only %d reads during the writes' % len(answers)
        rows = mjs.db_events(uid, 0)
        assert [r['seq'] for r in rows] == list(range(1, len(rows) + 1)), 'the events table has gaps'
        distinct = set()
        for kind, seq, items in answers:
            convs, msgs = replay(rows, seq, cid)
            want = convs if kind == 'convs' else msgs
            assert items == want, '%s read at seq %d differs from events 1..%d:\n got  %s\n want %s' % (
                kind, seq, seq, mjs.short(items, 600), mjs.short(want, 600))
            distinct.add(seq)
        assert len(distinct) >= 5, 'the reads saw only %d different seqs' % len(distinct)

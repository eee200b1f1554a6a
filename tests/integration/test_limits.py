"""
Per-user caps (mjs.conf(5), "Per-user limits"): replies queued or running,
tasks in progress and open streams per responder. Over a cap the request gets
429 with its own code and a Retry-After, nothing changes, other users go on,
and mjsctl limits names the user; once a reply, task or stream ends, the user
may start another.
"""

import json
import os
import subprocess

import mjs


def limits_of(username, conf):
    e = mjs.env()
    proc = subprocess.run([os.path.join(e['MJS_BUILD_DIR'], 'mjsctl'), '-c', conf, '--json', 'limits'],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert proc.returncode == 0, proc.stderr.decode('utf-8', 'replace')
    rows = [json.loads(line) for line in proc.stdout.decode('utf-8').splitlines() if line.strip()]
    return [r for r in rows if r['username'] == username]


def assert_over_cap(resp, code):
    mjs.assert_error(resp, 429, code)
    retry = resp.headers.get('Retry-After')
    assert retry and retry.isdigit() and int(retry) >= 1, 'Retry-After: %r' % retry


@mjs.timeout(120)
def test_replies_over_the_cap_get_429_and_change_nothing():
    with mjs.Client() as a, mjs.Client() as b, mjs.apis_with(max_replies_per_user='2') as apis:
        a.signup()
        b.signup()
        conv = a.create_conversation('capped')
        # two replies that wait a minute for their first token: once both are
        # pending, nothing of a's changes unless the refused request changes it
        slow = 'fake:delay=60:tokens=1'
        first = mjs.send_message(a, conv['id'], 'one', slow)['assistant_message']
        second = mjs.send_message(a, conv['id'], 'two', slow)['assistant_message']
        mjs.wait_until(lambda: mjs.psql_value(
            "SELECT count(*) FROM mjs.messages WHERE id IN (:'p1', :'p2') AND status = 'pending'",
            first['id'], second['id']) == '2', 30, 'both replies to be pending')
        with mjs.unchanged(a.user_id, what="a refused reply"):
            r = a.post('/api/conversations/%s/messages' % conv['id'], {'content': 'three', 'model': slow})
            assert_over_cap(r, 'too_many_replies')
            assert '2' in r.json['error']['message']
        # a conversation that is not the user's is still 404, not a hint at the cap
        mjs.assert_error(a.post('/api/conversations/%s/messages' % b.create_conversation()['id'],
                                {'content': 'x'}), 404, 'not_found')
        # another user is not affected
        bc = b.create_conversation()
        mjs.send_message(b, bc['id'], 'mine', 'fake:tokens=3')
        # mjsctl names the user and the cap
        rows = limits_of(a.username, apis.conf)
        assert rows and rows[0]['replies'] == 2 and 'replies' in rows[0]['at_cap'], rows
        assert not limits_of(b.username, apis.conf)
        # once one ends, the next reply goes through
        a.post('/api/messages/%s/stop' % first['id'])
        mjs.wait_final(a, conv['id'], first['id'])
        mjs.send_message(a, conv['id'], 'three again', 'fake:tokens=3')
        a.post('/api/messages/%s/stop' % second['id'])


@mjs.timeout(120)
def test_tasks_over_the_cap_get_429_and_change_nothing():
    with mjs.Client() as a, mjs.Client() as b, mjs.apis_with(max_tasks_per_user='1') as apis:
        a.signup()
        b.signup()
        # a task that stays in progress: once it is processing, nothing of a's changes
        held = mjs.create_task(a, 'image', 'fake:hang a slow cat')
        mjs.wait_until(lambda: (mjs.db_task(held['id'])['status'] == 'processing'
                                and mjs.db_task(held['id'])['upstream_id'] is not None), 30,
                       'the held task to be processing')
        mjs.wait_until(lambda: mjs.get_task(a, held['id'])['progress'] > 0, 30, 'the held task to hang')
        ids = "SELECT string_agg(id::text, ',' ORDER BY id) FROM mjs.tasks WHERE user_id = :'p1'"
        before = mjs.psql_value(ids, a.user_id)
        with mjs.unchanged(a.user_id, what='a refused task'):     # no event either
            r = a.post('/api/tasks', {'kind': 'image', 'prompt': 'one too many'})
            assert_over_cap(r, 'too_many_tasks')
        assert mjs.psql_value(ids, a.user_id) == before, 'the refused task was stored'
        assert not mjs.fake_tasks('one too many'), 'the refused task reached the upstream'
        mjs.create_task(b, 'image', 'fake:steps=1 not capped')
        rows = limits_of(a.username, apis.conf)
        assert rows and rows[0]['tasks'] == 1 and 'tasks' in rows[0]['at_cap'], rows
        # a deleted task still runs and still counts
        a.delete('/api/tasks/%s' % held['id']).expect(204)
        assert_over_cap(a.post('/api/tasks', {'kind': 'image', 'prompt': 'still too many'}), 'too_many_tasks')
        # once it has ended (an operator fails it here; its worker lets it go), there is room
        mjs.psql("UPDATE mjs.tasks SET status = 'failed', error = 'ended by the test' WHERE id = :'p1'",
                 held['id'])
        mjs.create_task(a, 'image', 'fake:steps=1 room again')


@mjs.timeout(120)
def test_streams_over_the_cap_per_responder_get_429_and_others_stay_live():
    with mjs.Client() as a, mjs.Client() as b, mjs.apis_with(max_streams_per_user='2') as apis:
        a.signup()
        b.signup()
        # each responder admits two of a's streams and nginx spreads them over
        # both: open streams until one is refused
        streams, refused = [], None
        try:
            for _ in range(12):
                s = mjs.SSE(a)
                if s.status != 200:
                    refused = s
                    break
                streams.append(s)
            assert refused is not None, 'twelve streams of one user were all admitted'
            assert refused.status == 429, refused
            assert refused.json['error']['code'] == 'too_many_streams', refused.json
            assert int(refused.headers.get('retry-after', ['0'])[0]) >= 1, refused.headers
            per_api = [len(mjs.stream_fds('api-%d' % n)) for n in (1, 2)]
            assert max(per_api) <= 2 and 2 <= len(streams) <= 4, (per_api, len(streams))
            # the open ones stay live, and another user is not affected
            conv = a.create_conversation('still live')
            for s in streams:
                s.wait_for(lambda e: e.event == 'conversation.created' and e.json['id'] == conv['id'])
            with mjs.SSE(b) as sb:
                assert sb.status == 200
            mjs.wait_until(lambda: bool(limits_of(a.username, apis.conf)), 15,
                           'mjsctl limits to show the stream cap (from the heartbeat)')
            row = limits_of(a.username, apis.conf)[0]
            assert 'streams' in row['at_cap'] and row['streams_capped_on'], row
        finally:
            for s in streams:
                s.close()
        # closed streams give their seats back
        def reopened():
            with mjs.SSE(a) as s:
                return s.status == 200
        mjs.wait_until(reopened, 15, 'a stream to open again after the others closed')


@mjs.timeout(180)
def test_one_users_backlog_does_not_delay_another_users_reply():
    """
    Fair claiming: with two worker slots, user A queues eight replies of about
    a second each, then user B sends one. B's reply starts at the next free
    slot, ahead of A's older queued ones (first come, first served would start
    it after all of them), and A's replies still run in A's own order.
    """
    with mjs.Client() as a, mjs.Client() as b, mjs.apis_with(max_replies_per_user='20'), \
            mjs.worker_with(max_generations='2'):
        a.signup()
        b.signup()
        ca, cb = a.create_conversation('backlog'), b.create_conversation('one')
        mine = [mjs.send_message(a, ca['id'], 'a%d' % i, 'fake:tps=20:tokens=20')['assistant_message']['id']
                for i in range(8)]
        theirs = mjs.send_message(b, cb['id'], 'b', 'fake:tokens=3')['assistant_message']['id']
        mjs.wait_final(b, cb['id'], theirs, timeout=60)
        for mid in mine:
            mjs.wait_final(a, ca['id'], mid, timeout=90)
        rows = mjs.psql("""
            SELECT message_id, started_at > (SELECT started_at FROM mjs.generations WHERE message_id = :'p1')
            FROM mjs.generations WHERE user_id = :'p2' ORDER BY created_at""", theirs, a.user_id)
        after = [r[0] for r in rows if r[1] == 't']
        assert len(after) >= 4, 'only %d of A\'s 8 older replies started after B\'s' % len(after)
        started = mjs.psql("SELECT message_id FROM mjs.generations WHERE user_id = :'p1' "
                           "ORDER BY started_at, created_at", a.user_id)
        assert [r[0] for r in started] == mine, "A's replies did not start in A's order"

"""
The worker after a database outage longer than its lease (a worker with
lease_time = 3s, PostgreSQL stopped for 5 s): it keeps streaming what it holds,
and when the database is back it renews its leases before it claims anything,
so it never claims its own jobs as abandoned. The reply streaming through the
outage completes with its whole text (not failed as "interrupted"), was sent
upstream once, and a task running through it was submitted once and succeeds.
Reads right after the outage answer 200: the responders' pooled connections,
all dead, reconnect on use and the read goes again.
"""

import json
import os
import time
import urllib.request

import mjs

OUTAGE_S = 5          # PostgreSQL down for longer than the 3 s lease


def chat_requests():
    with urllib.request.urlopen(mjs.env()['MJS_FAKE_URL'].rstrip('/') + '/stats', timeout=5) as r:
        return json.loads(r.read().decode('utf-8'))['chat_requests']


@mjs.timeout(150)
def test_a_database_outage_longer_than_the_lease_neither_fails_nor_repeats_running_jobs():
    with mjs.Client() as a, mjs.worker_with(lease_time='3s'):
        a.signup()
        cid = a.create_conversation('through the outage')['id']
        prompt = 'fake:steps=4:step=1.5 a lighthouse %s' % mjs.unique_username('')
        task = mjs.create_task(a, 'image', prompt)
        before = chat_requests()
        mid = mjs.send_message(a, cid, 'a slow one', 'fake:tps=4:tokens=48')['assistant_message']['id']
        mjs.wait_message(a, cid, mid, lambda m: m['status'] == 'streaming' and m['content'], 20,
                         'the reply to stream')
        mjs.wait_task(a, task['id'], lambda t: t['status'] == 'processing', 20, 'the task to be processing')
        # many reads at once: the responders' pools open most of their connections
        readers = [a.same_session() for _ in range(16)]

        def read_all():
            statuses = []
            mjs.run_parallel([lambda r=r: statuses.append(r.get('/api/conversations').status)
                              for r in readers], 30, 'readers')
            return statuses
        assert read_all() == [200] * 16
        try:
            mjs.stack_sh('mjs_pg_stop')
            time.sleep(OUTAGE_S)      # the outage itself: what the test is about, not a wait for a result
        finally:
            mjs.stack_sh('mjs_pg_start')
        # PostgreSQL is up (pg_ctl -w). The pooled connections died with it: reads
        # reconnect and go again instead of answering 503, however many run at once
        statuses = read_all()
        assert statuses == [200] * 16, 'reads right after the outage: %s' % statuses
        m = mjs.wait_final(a, cid, mid, 40)
        assert m['status'] == 'completed', 'the reply ended %s: %s' % (m['status'], m.get('error'))
        assert m['content'] == 'tok ' * 48, 'not the whole text: %d characters' % len(m['content'])
        assert chat_requests() - before == 1, 'the reply was sent upstream %d times' % (chat_requests() - before)
        t = mjs.wait_task_final(a, task['id'], 40)
        assert t['status'] == 'succeeded', t
        assert len(mjs.fake_tasks(prompt)) == 1, 'the task was submitted %d times' % len(mjs.fake_tasks(prompt))


@mjs.timeout(120)
def test_text_a_failover_lost_is_written_again_and_the_reply_ends_whole():
    """
    A failover to a standby that had not received the newest commits leaves a
    streaming reply shorter in the database than the worker wrote it, while
    the worker's connection breaks. Made here in one transaction: the user's
    lock holds the worker's next flush, every chunk of the reply but the first
    goes, and the worker's connections are cut. The worker must find out when
    it reconnects and write the lost text again from its own copy: the reply
    ends with its whole text, once, not with a hole or cut at the loss.
    """
    with mjs.Client() as a:
        a.signup()
        cid = a.create_conversation('lost in a failover')['id']
        mid = mjs.send_message(a, cid, 'a slow one', 'fake:tps=10:tokens=60')['assistant_message']['id']
        mjs.wait_message(a, cid, mid, lambda m: m['status'] == 'streaming' and len(m['content']) >= 40, 20,
                         'the reply to stream a few flushes')
        kept = mjs.psql("""
BEGIN;
SELECT mjs.lock_user(user_id) FROM mjs.messages WHERE id = :'p1';
DELETE FROM mjs.message_chunks WHERE message_id = :'p1'
    AND "offset" > (SELECT min("offset") FROM mjs.message_chunks WHERE message_id = :'p1');
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'mjs-worker';
SELECT mjs.message_chars(m) FROM mjs.messages m WHERE id = :'p1';
COMMIT;""", mid)
        lines = '\n'.join(v or '' for row in kept for v in row).split('\n')    # one line per statement's row
        cut, chars = int(lines[-2]), int(lines[-1])
        assert cut >= 1, 'no worker connection was cut: %r' % kept
        assert chars < 40, 'the database should hold less than the worker wrote: %d characters' % chars
        m = mjs.wait_final(a, cid, mid, 60)
        assert m['status'] == 'completed', 'the reply ended %s: %s' % (m['status'], m.get('error'))
        assert m['content'] == mjs.fake_tokens(60), 'not the whole text once: %r' % m['content']
        with open(os.path.join(mjs.env()['MJS_STATE_DIR'], 'logs', 'worker.log'), encoding='utf-8',
                  errors='replace') as f:
            assert 'generation rewound id=%s' % mid in f.read(), 'the worker did not log the rewind'

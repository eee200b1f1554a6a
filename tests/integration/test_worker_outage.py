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

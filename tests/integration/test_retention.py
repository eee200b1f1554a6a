"""
Retention without an operator (sql/functions/retain.sql, mjs.conf(5) delta_retention,
event_retention, event_keep): the workers delete the message.delta events of
finished replies once they are older than delta_retention, keep every other
event, keep the deltas of a reply still streaming, and delete events older
than event_retention beyond each user's last event_keep (and finished job rows
as old). A tab whose Last-Event-ID falls into deleted history gets `reset`; the
messages read over REST are whole. mjsctl stats shows what retention did.

The tests age rows by moving their created_at back (and the retention's scan
point with them) instead of waiting minutes.
"""

import json
import os
import subprocess

import mjs

WAIT = 30


def age_events(user_id, interval):
    mjs.psql("UPDATE mjs.events SET created_at = created_at - :'p2'::interval WHERE user_id = :'p1'",
             user_id, interval)
    mjs.psql("UPDATE mjs.retention SET delta_since = NULL")


def types_of(user_id):
    return [(r['type'], r['data'].get('message_id') or r['data'].get('id')) for r in mjs.db_events(user_id)]


def stats():
    e = mjs.env()
    conf = e.get('MJS_CONF') or os.path.join(e['MJS_STATE_DIR'], 'mjs.conf')
    out = subprocess.run([os.path.join(e['MJS_BUILD_DIR'], 'mjsctl'), '-c', conf, '--json', 'stats'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, check=True)
    return json.loads(out.stdout.decode('utf-8'))


@mjs.timeout(120)
def test_deltas_of_finished_replies_are_compacted_and_a_tab_behind_them_resets():
    with mjs.Client() as a, mjs.Client() as b:
        a.signup()
        b.signup()
        conv = a.create_conversation('retained')
        done = mjs.send_message(a, conv['id'], 'one', 'fake:tps=0:tokens=30')['assistant_message']
        mjs.wait_final(a, conv['id'], done['id'], WAIT)
        running = mjs.send_message(a, conv['id'], 'two', 'fake:tps=2:tokens=600')['assistant_message']
        mjs.wait_until(lambda: any(t == ('message.delta', running['id']) for t in types_of(a.user_id)),
                       WAIT, 'the running reply to stream')
        other = b.create_conversation('not aged')
        other_done = mjs.send_message(b, other['id'], 'x', 'fake:tps=0:tokens=5')['assistant_message']
        mjs.wait_final(b, other['id'], other_done['id'], WAIT)
        before = types_of(a.user_id)
        first_delta = next(r['seq'] for r in mjs.db_events(a.user_id) if r['type'] == 'message.delta')
        b_before = types_of(b.user_id)
        deltas_before = stats()['retention']['deltas_deleted']
        age_events(a.user_id, '1 hour')     # past the default delta_retention, 10 minutes
        mjs.wait_until(lambda: ('message.delta', done['id']) not in types_of(a.user_id), WAIT,
                       "the finished reply's deltas to be deleted")
        after = types_of(a.user_id)
        # every other event is kept, and so are the running reply's deltas
        kept = [t for t in before if t != ('message.delta', done['id'])]
        assert after[:len(kept)] == kept, (before, after)
        assert ('message.delta', running['id']) in after
        assert types_of(b.user_id)[:len(b_before)] == b_before, "another user's recent events went"
        # the whole text is still there over REST
        m = mjs.get_message(a, conv['id'], done['id'])
        assert m['content'] == mjs.fake_tokens(30), m
        # a tab that last saw the event before the deleted deltas gets reset
        with mjs.SSE(a, last_event_id=first_delta - 1) as s:
            s.wait_for(lambda e: e.event == 'reset')
        st = stats()['retention']
        assert st['deltas_deleted'] >= deltas_before + before.count(('message.delta', done['id'])), st
        assert st['last_run'], st
        a.post('/api/messages/%s/stop' % running['id'])


@mjs.timeout(120)
def test_old_events_beyond_each_users_last_n_and_old_job_rows_are_deleted():
    with mjs.Client() as a:
        a.signup()
        conv = a.create_conversation('old')
        mids = []
        for i in range(3):
            mid = mjs.send_message(a, conv['id'], 'm%d' % i, 'fake:tps=0:tokens=3')['assistant_message']['id']
            mjs.wait_final(a, conv['id'], mid, WAIT)
            mids.append(mid)
        a.rename_conversation(conv['id'], 'old, renamed')
        head = mjs.db_event_seq(a.user_id)
        age_events(a.user_id, '8 days')
        mjs.psql("UPDATE mjs.generations SET finished_at = finished_at - interval '8 days' WHERE user_id = :'p1'",
                 a.user_id)
        last4 = [r for r in mjs.db_events(a.user_id) if r['seq'] > head - 4]
        with mjs.worker_with(event_keep='4'):
            mjs.wait_until(lambda: min(r['seq'] for r in mjs.db_events(a.user_id)) > head - 4, WAIT,
                           'events beyond the last 4 to go')
            # the last four stay, but for deltas of a finished reply (compacted as ever)
            assert mjs.db_events(a.user_id) == [r for r in last4 if r['type'] != 'message.delta']
            mjs.wait_until(lambda: mjs.psql_value("SELECT count(*) FROM mjs.generations WHERE user_id = :'p1'",
                                                  a.user_id) == '0', WAIT, 'the old job rows to go')
        # the user's data is untouched
        assert [m['id'] for m in mjs.list_messages(a, conv['id']) if m['role'] == 'assistant'] == mids
        assert a.get('/api/conversations/%s/messages' % conv['id']).status == 200

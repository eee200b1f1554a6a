"""
mjsctl task list and task retry against the running stack, with the stack's
worker and the fake upstream: list shows a running task with its worker, lease
and upstream job (text and --json), finished ones only with --all; retry of a
failed task resubmits it (a new upstream job, attempts from 0, task_deadline
from the retry) and every stream of the user sees it run to the end; retry of
a task that has not failed changes nothing; bad arguments exit 2; the
task views (sql/views/active_tasks.sql, recent_task_failures.sql) answer.
"""

import os
import secrets
import tempfile
import uuid
from contextlib import ExitStack

import mjs
from test_mjsctl import fails, json_lines, json_one, mjsctl, ok

WAIT = 30


def tag():
    return secrets.token_hex(4)


def listed(*args):
    """task list --json ARGS as {id: row}."""
    return {r['id']: r for r in json_lines(ok('--json', 'task', 'list', *args))}


@mjs.timeout(90)
def test_task_list_shows_a_running_task_with_worker_lease_and_upstream_job():
    with ExitStack() as stack:
        a = stack.enter_context(mjs.Client())
        a.signup()
        s = stack.enter_context(mjs.SSE(a))
        other = stack.enter_context(mjs.Client())
        other.signup()
        running = mjs.create_task(a, 'image', 'fake:hang long haul %s' % tag())
        failed = mjs.create_task(a, 'video', 'fake:fail:steps=1 no luck %s' % tag())
        mjs.wait_task_event(s, running['id'], lambda e: e.json['progress'] == 25, WAIT)
        assert mjs.wait_task_final(a, failed['id'], WAIT)['status'] == 'failed'

        row = listed('--user', a.username)[running['id']]
        db = mjs.db_task(running['id'])
        assert set(row) == {'id', 'username', 'kind', 'status', 'progress', 'upstream_id', 'worker', 'lease',
                            'lease_left_s', 'attempts', 'age_s', 'error'}, row
        assert row['username'] == a.username and row['kind'] == 'image', row
        assert row['status'] == 'processing' and row['progress'] == 25 and row['error'] is None, row
        assert row['upstream_id'] == db['upstream_id'] and row['upstream_id'], (row, db)
        assert row['worker'] == db['worker'] and row['worker'], (row, db)
        assert row['lease'] == 'held' and row['lease_left_s'] > 0 and row['attempts'] == 1, row
        assert isinstance(row['age_s'], (int, float)) and row['age_s'] >= 0, row

        # finished tasks only with --all; --user keeps to that user
        assert failed['id'] not in listed('--user', a.username)
        done = listed('--all', '--user', a.username)[failed['id']]
        assert done['status'] == 'failed' and done['lease'] is None and done['lease_left_s'] is None, done
        assert 'fake failure' in done['error'], done
        assert list(listed('--all', '--user', a.username)) == [failed['id'], running['id']], 'not newest first'
        assert len(listed('--all', '--user', a.username, '--limit', '1')) == 1
        assert listed('--all', '--user', other.username.upper()) == {}
        assert running['id'] in listed()

        text = ok('task', 'list', '--user', a.username).splitlines()
        assert text[0].split() == ['id', 'username', 'kind', 'status', 'progress', 'upstream_id', 'worker',
                                   'lease', 'lease_left_s', 'attempts', 'age_s', 'error'], text
        assert len(text) == 2 and text[1].startswith(running['id']) and ' held ' in text[1], text
        fails(1, ['task', 'list', '--user', mjs.unique_username()], 'no such user')

        active = mjs.psql("SELECT status, lease, upstream_id, worker FROM mjs.active_tasks WHERE id = :'p1'",
                          running['id'])
        assert active == [['processing', 'held', db['upstream_id'], db['worker']]], active
        failure = mjs.psql("SELECT username, kind, error FROM mjs.recent_task_failures WHERE id = :'p1'",
                           failed['id'])
        assert failure and failure[0][:2] == [a.username, 'video'] and 'fake failure' in failure[0][2], failure
        # deleting the user ends the hanging task: its worker finds it gone at the next renewal
        ok('user', 'delete', a.username)


@mjs.timeout(90)
def test_task_retry_of_a_failed_task_resubmits_and_every_stream_sees_it_succeed():
    with ExitStack() as stack:
        a = stack.enter_context(mjs.Client())
        a.signup()
        phone = stack.enter_context(a.another_device())
        streams = [stack.enter_context(mjs.SSE(x)) for x in (a, phone, a.same_session())]
        other = stack.enter_context(mjs.Client())
        other.signup()
        other_stream = stack.enter_context(mjs.SSE(other))
        prompt = 'fake:fail:fail_times=1:steps=2 second chance %s' % tag()
        task = mjs.create_task(a, 'image', prompt)
        assert mjs.wait_task_final(a, task['id'], WAIT)['status'] == 'failed'
        first = mjs.db_task(task['id'])
        # created two hours ago: task_deadline (1h) must count from the retry, not the creation
        mjs.psql("UPDATE mjs.tasks SET created_at = created_at - interval '2 hours' WHERE id = :'p1'", task['id'])
        seq = mjs.db_event_seq(a.user_id)

        res = json_one('task', 'retry', task['id'])
        assert res == {'id': task['id'], 'outcome': 'retried', 'status': 'submitting'}, res
        final = mjs.wait_task_final(a, task['id'], WAIT)
        assert final['status'] == 'succeeded' and final['progress'] == 100 and final['result'], final
        assert final['error'] is None, final

        jobs = mjs.fake_tasks(prompt)
        after = mjs.db_task(task['id'])
        assert len(jobs) == 2 and first['upstream_id'] in [j['id'] for j in jobs], jobs
        assert after['upstream_id'] != first['upstream_id'] and after['upstream_id'] in [j['id'] for j in jobs], \
            (first, after)
        assert after['attempts'] == 1, 'attempts did not start again from 0: %r' % after

        events = mjs.db_events(a.user_id, seq)
        assert events[0]['type'] == 'task.updated', events
        reset = events[0]['data']
        assert reset['id'] == task['id'] and reset['status'] == 'submitting' and reset['progress'] == 0, reset
        assert reset['error'] is None and reset['result'] is None, reset
        assert events[-1]['data'] == final, events
        for i, s in enumerate(streams):
            mjs.wait_task_event(s, task['id'], lambda e: e.json['status'] == 'succeeded', WAIT)
            mine = [(e.id, e.json) for e in mjs.task_events(s.events(), task['id']) if e.id > seq]
            assert mine == [(e['seq'], e['data']) for e in events], 'stream %d: %r' % (i, mine)
        mjs.sync_streams(other, [other_stream])
        assert mjs.task_events(other_stream.events(), task['id']) == [], 'another user saw the retry'


@mjs.timeout(90)
def test_task_retry_of_a_task_that_has_not_failed_changes_nothing():
    with ExitStack() as stack:
        a = stack.enter_context(mjs.Client())
        a.signup()
        s = stack.enter_context(mjs.SSE(a))
        running = mjs.create_task(a, 'image', 'fake:hang still going %s' % tag())
        succeeded = mjs.create_task(a, 'video', 'fake:steps=1 all good %s' % tag())
        mjs.wait_task_event(s, running['id'], lambda e: e.json['progress'] == 25, WAIT)
        assert mjs.wait_task_final(a, succeeded['id'], WAIT)['status'] == 'succeeded'

        for task, status in ((running, 'processing'), (succeeded, 'succeeded')):
            before = mjs.db_task(task['id'])
            with mjs.unchanged(a.user_id, what='a refused retry'):
                fails(1, ['task', 'retry', task['id']], 'has status %s: only a failed task can be retried' % status)
                fails(1, ['--json', 'task', 'retry', task['id']], 'only a failed task')
            assert mjs.db_task(task['id']) == before
        fails(1, ['task', 'retry', str(uuid.uuid4())], 'no such task')
        ok('user', 'delete', a.username)


@mjs.timeout(60)
def test_task_commands_bad_arguments_exit_2_and_database_down_exit_3():
    cases = [
        (['task'], '"task" needs a subcommand'),
        (['task', 'frob'], 'unknown command "task frob"'),
        (['task', 'retry'], '"task retry" takes ID'),
        (['task', 'retry', 'not-a-uuid'], 'bad task id "not-a-uuid"'),
        (['task', 'retry', str(uuid.uuid4()), 'extra'], '"task retry" takes ID'),
        (['task', 'retry', str(uuid.uuid4()), '--all'], 'option --all does not apply to "task retry"'),
        (['task', 'list', 'extra'], '"task list" takes [--all]'),
        (['task', 'list', '--limit', '0'], 'bad --limit "0"'),
        (['task', 'list', '--user'], 'option --user needs a value'),
        (['task', 'list', '--user', 'x'], 'bad user name "x"'),
        (['task', 'list', '--older-than', '1d'], 'option --older-than does not apply to "task list"'),
    ]
    for args, message in cases:
        fails(2, args, message)
    rc, out, _ = mjsctl('--help')
    assert rc == 0 and 'task list' in out and 'task retry' in out, out

    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, 'down.conf')
        with open(conf, 'w') as f:
            f.write('database = host=%s/no-such-socket-dir dbname=mjs user=mjs connect_timeout=3\n' % d)
        for args in (['task', 'list'], ['task', 'retry', str(uuid.uuid4())]):
            fails(3, args, 'cannot connect to the database', conf=conf)


@mjs.timeout(60)
def test_task_views_have_comments():
    for view in ('active_tasks', 'recent_task_failures'):
        mjs.psql('SELECT * FROM mjs.%s LIMIT 5' % view)
        comment = mjs.psql_value("SELECT obj_description(:'p1'::regclass, 'pg_class')", 'mjs.' + view)
        assert comment, 'view mjs.%s has no COMMENT' % view

"""
Image and video tasks when things break: an upstream that answers 503 for a
while and comes back (the task completes, polls back off meanwhile), one that
stays down past task_upstream_grace (the task fails saying so), a task past
task_deadline, and a worker killed with SIGKILL mid-task (the next worker takes
the lease over and polls the same upstream job: the fake sees one submit).

Tests that need other settings run a worker of their own (mjs.worker_with);
the stack's own worker is back afterwards.
"""

from contextlib import ExitStack
import secrets
import time

import mjs

WAIT = 30


def tag():
    return secrets.token_hex(4)


def user(stack):
    a = stack.enter_context(mjs.Client())
    a.signup()
    return a, stack.enter_context(mjs.SSE(a))


def progress_steps(events, tid):
    return [(e.json['status'], e.json['progress']) for e in mjs.task_events(events, tid)]


def assert_forward_only(seen, label):
    """Each event shows a change, and never a step back."""
    rank = {'submitting': 0, 'processing': 1, 'succeeded': 2, 'failed': 2}
    for prev, cur in zip(seen, seen[1:]):
        assert cur != prev, '%s: an event without a change: %r' % (label, seen)
        assert rank[cur[0]] >= rank[prev[0]] and cur[1] >= prev[1], '%s: a step back: %r' % (label, seen)


@mjs.timeout(60)
def test_upstream_down_for_a_while_then_back_completes_the_task_with_backoff():
    with ExitStack() as stack:
        a, s = user(stack)
        prompt = 'fake:steps=2:down=2 storm %s' % tag()
        task = mjs.create_task(a, 'image', prompt)
        final = mjs.wait_task_final(a, task['id'], WAIT)
        assert final['status'] == 'succeeded' and final['error'] is None, final
        mjs.wait_task_event(s, task['id'], lambda e: e.json['status'] == 'succeeded', WAIT)
        seen = progress_steps(s.events(), task['id'])
        assert seen == [('submitting', 0), ('processing', 0), ('processing', 50), ('succeeded', 100)], seen
        jobs = mjs.fake_tasks(prompt)
        assert len(jobs) == 1, jobs
        # 2 s of 503s at a 200 ms poll: 10 polls without backoff; 200, 400, 800, 1600 ms with it
        assert jobs[0]['fetches'] <= 9, 'no backoff while the upstream was down: %r' % jobs


@mjs.timeout(60)
def test_upstream_down_past_the_grace_fails_the_task_saying_so():
    with ExitStack() as stack:
        stack.enter_context(mjs.worker_with(task_upstream_grace='1s', task_poll_interval='100ms',
                                            task_backoff_max='200ms'))
        a, s = user(stack)
        task = mjs.create_task(a, 'video', 'fake:down=60 flood %s' % tag())
        t0 = time.monotonic()
        final = mjs.wait_task_final(a, task['id'], WAIT)
        took = time.monotonic() - t0
        assert final['status'] == 'failed' and 'task_upstream_grace' in final['error'] and \
            'HTTP 503' in final['error'], final
        assert final['progress'] == 25, final
        assert took < 10, 'failed %.1fs after creation with a 1 s grace' % took
        ev = mjs.wait_task_event(s, task['id'], lambda e: e.json['status'] == 'failed', WAIT)
        assert ev.json == final


@mjs.timeout(60)
def test_task_past_its_deadline_fails_with_a_clear_error():
    with ExitStack() as stack:
        stack.enter_context(mjs.worker_with(task_deadline='2s', task_poll_interval='100ms'))
        a, s = user(stack)
        task = mjs.create_task(a, 'image', 'fake:hang forever %s' % tag())
        final = mjs.wait_task_final(a, task['id'], WAIT)
        assert final['status'] == 'failed' and 'task_deadline' in final['error'], final
        took = mjs.psql_value("SELECT extract(epoch FROM finished_at - created_at) FROM mjs.tasks "
                              "WHERE id = :'p1'", task['id'])
        assert 1.9 <= float(took) <= 6, 'failed %ss after creation, task_deadline is 2s' % took
        mjs.wait_task_event(s, task['id'], lambda e: e.json['status'] == 'failed', WAIT)
        assert_forward_only(progress_steps(s.events(), task['id']), 'stream')


@mjs.timeout(90)
def test_worker_killed_mid_task_next_worker_polls_the_same_upstream_job_to_the_end():
    with ExitStack() as stack:
        stack.enter_context(mjs.worker_with(lease_time='3s', task_poll_interval='100ms'))
        a, s = user(stack)
        prompt = 'fake:steps=5:step=0.4 marathon %s' % tag()
        task = mjs.create_task(a, 'image', prompt)
        mjs.wait_task_event(s, task['id'], lambda e: e.json['progress'] >= 20, WAIT)
        before = mjs.db_task(task['id'])
        assert before['status'] == 'processing' and before['upstream_id'] and before['attempts'] == 1, before
        mjs.kill9('worker')
        mjs.start_worker(lease_time='3s', task_poll_interval='100ms')
        final = mjs.wait_task_final(a, task['id'], WAIT)
        assert final['status'] == 'succeeded' and final['result'], final
        after = mjs.db_task(task['id'])
        assert after['upstream_id'] == before['upstream_id'] and after['attempts'] == 2, (before, after)
        jobs = mjs.fake_tasks(prompt)
        assert len(jobs) == 1 and jobs[0]['id'] == before['upstream_id'], 'submitted again: %r' % jobs
        mjs.wait_task_event(s, task['id'], lambda e: e.json['status'] == 'succeeded', WAIT)
        seen = progress_steps(s.events(), task['id'])
        assert_forward_only(seen, 'stream')
        assert seen[-1] == ('succeeded', 100), seen

"""
Image and video tasks through the whole stack (nginx, mjs-api, the real
mjs-worker, the fake upstream): a task created in one tab shows up on every
stream of the user with each status and progress step in order, other users
see nothing; failures say why; blur, delete, the trash and restore are live on
every stream and agree with REST; bad input is refused and changes nothing.

The fake upstream reads knobs from the prompt's first word (see
dev/fake_upstream/): "fake:steps=4" reports 25, 50, 75 % and then success,
one step per poll. Every prompt carries a random tag so tests never mix.
"""

from contextlib import ExitStack
import json
import secrets

import mjs

WAIT = 30


def tag():
    return secrets.token_hex(4)


def three_streams(stack, a):
    """Three streams of a's user: a tab, a second tab of the same session, another device."""
    tab2 = stack.enter_context(a.same_session())
    device = stack.enter_context(a.another_device())
    return [stack.enter_context(mjs.SSE(c)) for c in (a, tab2, device)]


def steps(events):
    return [(e.event, e.json.get('status'), e.json.get('progress')) for e in events]


@mjs.timeout(60)
def test_image_task_progress_reaches_every_stream_in_order_and_other_users_see_nothing():
    with ExitStack() as stack:
        a = stack.enter_context(mjs.Client())
        a.signup()
        other = stack.enter_context(mjs.Client())
        other.signup()
        streams = three_streams(stack, a)
        other_streams = [stack.enter_context(mjs.SSE(other)), stack.enter_context(mjs.SSE(other.same_session()))]

        task = mjs.create_task(a, 'image', 'fake:steps=4 a lighthouse at dawn %s' % tag())
        assert task['status'] == 'submitting' and task['progress'] == 0 and task['result'] is None, task
        assert task['kind'] == 'image' and task['blurred'] is False and task['deleted_at'] is None, task
        assert mjs.is_uuid(task['id']) and task['error'] is None and task['options'] == {}, task
        final = mjs.wait_task_final(a, task['id'], WAIT)
        assert final['status'] == 'succeeded' and final['progress'] == 100, final
        assert isinstance(final['result'], list) and len(final['result']) == 1 and \
            final['result'][0].endswith('.png'), final

        expected = [('task.created', 'submitting', 0), ('task.updated', 'processing', 0),
                    ('task.updated', 'processing', 25), ('task.updated', 'processing', 50),
                    ('task.updated', 'processing', 75), ('task.updated', 'succeeded', 100)]
        for i, s in enumerate(streams):
            mjs.wait_task_event(s, task['id'], lambda e: e.json['status'] == 'succeeded', WAIT)
            evs = mjs.task_events(s.events(), task['id'])
            assert steps(evs) == expected, 'stream %d: %r' % (i, steps(evs))
            assert evs[0].json == task, 'stream %d: task.created %r, REST %r' % (i, evs[0].json, task)
            assert evs[-1].json == final, 'stream %d: last event %r, REST %r' % (i, evs[-1].json, final)
            mjs.assert_gapless(s.events(), s.start_id + 1, 'stream %d' % i)
        # the other user's streams: nothing up to their own marker
        marker = mjs.sync_streams(other, other_streams)
        for s in other_streams:
            assert [e.json.get('id') for e in s.events()] == [marker], 'other user saw %r' % s.events()
        # the database agrees: one event per change, no event without a change
        db = [e for e in mjs.db_events(a.user_id) if e['type'].startswith('task.')]
        assert [(e['type'], e['data']['status'], e['data']['progress']) for e in db] == expected, db


@mjs.timeout(60)
def test_video_task_succeeds_with_its_options_and_a_content_url():
    with ExitStack() as stack:
        a = stack.enter_context(mjs.Client())
        a.signup()
        s = stack.enter_context(mjs.SSE(a))
        task = mjs.create_task(a, 'video', 'fake:steps=2 waves %s' % tag(), model='fake-video', seconds=4,
                               size='1280x720')
        assert task['options'] == {'model': 'fake-video', 'seconds': 4, 'size': '1280x720'}, task
        final = mjs.wait_task_final(a, task['id'], WAIT)
        assert final['status'] == 'succeeded' and final['progress'] == 100, final
        up = mjs.db_task(task['id'])['upstream_id']
        # the upstream names no URL: its content route needs the key and would show the
        # configured base, so the result is the API's own route for this task
        assert final['result'] == ['/api/tasks/%s/content' % task['id']], final
        mjs.wait_task_event(s, task['id'], lambda e: e.json['status'] == 'succeeded', WAIT)
        assert steps(mjs.task_events(s.events(), task['id'])) == [
            ('task.created', 'submitting', 0), ('task.updated', 'processing', 0),
            ('task.updated', 'processing', 50), ('task.updated', 'succeeded', 100)]
        fake = mjs.env()['MJS_FAKE_URL'].rstrip('/')
        seen = json.dumps([e.json for e in mjs.task_events(s.events(), task['id'])] + [final] +
                          [a.get('/api/tasks?limit=200').expect(200)])
        assert fake not in seen and '127.0.0.1:%s' % fake.rsplit(':', 1)[1] not in seen, 'the upstream base shows'
        whole = b'fake video ' + up.encode() + bytes(range(256)) * 4
        r = a.get('/api/tasks/%s/content' % task['id'])
        assert r.status == 200 and r.body == whole, r
        assert r.headers.get('Content-Type') == 'video/mp4' and r.headers.get('Accept-Ranges') == 'bytes', r.headers
        assert 'sandbox' in (r.headers.get_all('Content-Security-Policy') or []), r.headers
        assert 'private' in r.headers.get('Cache-Control', ''), r.headers
        # a player seeks with Range
        r = a.get('/api/tasks/%s/content' % task['id'], headers={'Range': 'bytes=100-299'})
        assert r.status == 206 and r.body == whole[100:300], r
        assert r.headers.get('Content-Range') == 'bytes 100-299/%d' % len(whole), r.headers
        r = a.get('/api/tasks/%s/content' % task['id'], headers={'Range': 'bytes=99999-'})
        assert r.status == 416, r
        # only the owner gets it
        with mjs.Client() as b:
            b.signup()
            mjs.assert_error(b.get('/api/tasks/%s/content' % task['id']), 404, 'not_found')
        with mjs.Client() as anon:
            mjs.assert_error(anon.get('/api/tasks/%s/content' % task['id']), 401, 'unauthorized')


@mjs.timeout(60)
def test_a_video_served_as_a_document_is_passed_on_as_bytes_only():
    """An upstream that serves the file as text/html must not get a page run on our
    origin: the type becomes application/octet-stream and the answer is sandboxed."""
    with mjs.Client() as a:
        a.signup()
        task = mjs.create_task(a, 'video', 'fake:steps=1:html html %s' % tag())
        final = mjs.wait_task_final(a, task['id'], WAIT)
        r = a.get(final['result'][0])
        assert r.status == 200 and r.body.startswith(b'fake video '), r
        assert r.headers.get('Content-Type') == 'application/octet-stream', r.headers
        assert 'sandbox' in (r.headers.get_all('Content-Security-Policy') or []), r.headers


@mjs.timeout(60)
def test_a_video_on_another_origin_is_its_own_result_and_not_proxied():
    with mjs.Client() as a:
        a.signup()
        task = mjs.create_task(a, 'video', 'fake:steps=1:cdn cdn %s' % tag())
        final = mjs.wait_task_final(a, task['id'], WAIT)
        up = mjs.db_task(task['id'])['upstream_id']
        assert final['result'] == ['https://cdn.fake.invalid/%s.mp4' % up], final
        mjs.assert_error(a.get('/api/tasks/%s/content' % task['id']), 404, 'not_found')


@mjs.timeout(60)
def test_failed_tasks_say_why_and_keep_their_progress():
    with ExitStack() as stack:
        a = stack.enter_context(mjs.Client())
        a.signup()
        s = stack.enter_context(mjs.SSE(a))
        image = mjs.create_task(a, 'image', 'fake:fail:steps=2 %s' % tag())
        video = mjs.create_task(a, 'video', 'fake:fail:steps=2 %s' % tag())
        refused = mjs.create_task(a, 'image', 'fake:submit_fail=400 %s' % tag())
        for t, words in ((image, 'image upstream failed the task: fake failure'),
                         (video, 'video upstream failed the job: fake failure'),
                         (refused, 'refused the task: HTTP 400')):
            final = mjs.wait_task_final(a, t['id'], WAIT)
            assert final['status'] == 'failed' and words in final['error'], final
            assert final['result'] is None, final
            ev = mjs.wait_task_event(s, t['id'], lambda e: e.json['status'] == 'failed', WAIT)
            assert ev.json == final, (ev, final)
        assert mjs.get_task(a, image['id'])['progress'] == 50
        assert len(mjs.fake_tasks(refused['prompt'])) == 0, 'a refused submit made an upstream job'


@mjs.timeout(60)
def test_blur_delete_trash_restore_are_live_on_every_stream_and_match_rest():
    with ExitStack() as stack:
        a = stack.enter_context(mjs.Client())
        a.signup()
        task = mjs.create_task(a, 'image', 'fake:steps=1 blur me %s' % tag())
        task = mjs.wait_task_final(a, task['id'], WAIT)
        streams = three_streams(stack, a)
        tid = task['id']
        expected = []

        blurred = a.patch('/api/tasks/' + tid, {'blurred': True}).expect(200)
        assert blurred['blurred'] is True and blurred['updated_at'] > task['updated_at'], blurred
        expected.append(('task.updated', blurred))
        again = a.patch('/api/tasks/' + tid, {'blurred': True}).expect(200)
        assert again == blurred, 'a PATCH that changes nothing changed %r to %r' % (blurred, again)

        a.delete('/api/tasks/' + tid).expect(204)
        expected.append(('task.deleted', {'id': tid}))
        a.delete('/api/tasks/' + tid).expect(204)       # already in the trash: nothing happens
        assert tid not in [t['id'] for t in mjs.list_tasks(a)['items']]
        trash = mjs.list_tasks(a, deleted=True)['items']
        assert [t['id'] for t in trash] == [tid] and trash[0]['deleted_at'], trash
        assert mjs.get_task(a, tid) == trash[0]

        restored = a.post('/api/tasks/%s/restore' % tid).expect(200)
        assert restored['deleted_at'] is None and restored['blurred'] is True, restored
        assert restored['status'] == 'succeeded' and restored['result'] == task['result'], restored
        expected.append(('task.restored', restored))
        mjs.assert_error(a.post('/api/tasks/%s/restore' % tid), 409, 'conflict')
        assert [t['id'] for t in mjs.list_tasks(a)['items']] == [tid]
        assert mjs.list_tasks(a, deleted=True)['items'] == []

        unblurred = a.patch('/api/tasks/' + tid, {'blurred': False}).expect(200)
        expected.append(('task.updated', unblurred))
        assert mjs.list_tasks(a)['items'] == [unblurred]

        marker = mjs.sync_streams(a, streams)
        for i, s in enumerate(streams):
            got = [(e.event, e.json) for e in s.events() if e.event != 'conversation.created']
            assert got == expected, 'stream %d: %r, expected %r' % (i, got, expected)
            assert s.events()[-1].json['id'] == marker


@mjs.timeout(60)
def test_a_task_deleted_while_running_keeps_running_and_restores_with_its_result():
    with ExitStack() as stack:
        a = stack.enter_context(mjs.Client())
        a.signup()
        s = stack.enter_context(mjs.SSE(a))
        task = mjs.create_task(a, 'image', 'fake:steps=3:step=0.3 deleted early %s' % tag())
        a.delete('/api/tasks/' + task['id']).expect(204)
        final = mjs.wait_task_final(a, task['id'], WAIT)
        assert final['status'] == 'succeeded' and final['deleted_at'] and final['result'], final
        assert mjs.list_tasks(a)['items'] == [] and mjs.list_tasks(a, deleted=True)['items'] == [final]
        mjs.wait_task_event(s, task['id'], lambda e: e.json.get('status') == 'succeeded', WAIT)
        restored = a.post('/api/tasks/%s/restore' % task['id']).expect(200)
        assert restored['status'] == 'succeeded' and restored['result'] == final['result'], restored
        ev = mjs.wait_task_event(s, task['id'], lambda e: e.event == 'task.restored', WAIT)
        assert ev.json == restored
        assert len(mjs.fake_tasks(task['prompt'])) == 1


@mjs.timeout(60)
def test_task_list_is_newest_first_with_cursor_paging_and_trash_apart():
    with ExitStack() as stack:
        a = stack.enter_context(mjs.Client())
        a.signup()
        made = [mjs.create_task(a, 'image', 'fake:steps=1 page %d %s' % (i, tag())) for i in range(5)]
        a.delete('/api/tasks/' + made[2]['id']).expect(204)
        want = [t['id'] for t in reversed(made) if t['id'] != made[2]['id']]
        got, cursor, pages = [], None, 0
        while True:
            q = {'limit': '2'}
            if cursor:
                q['cursor'] = cursor
            page = mjs.list_tasks(a, **q)
            pages += 1
            assert len(page['items']) <= 2
            got += [t['id'] for t in page['items']]
            cursor = page['next']
            if cursor is None:
                break
        assert got == want and pages == 2, (got, want, pages)
        assert [t['id'] for t in mjs.list_tasks(a, deleted=True)['items']] == [made[2]['id']]
        for t in made:
            mjs.wait_task_final(a, t['id'], WAIT)


def test_bad_task_requests_are_refused_and_change_nothing():
    with ExitStack() as stack:
        a = stack.enter_context(mjs.Client())
        a.signup()
        b = stack.enter_context(mjs.Client())
        b.signup()
        theirs = mjs.create_task(b, 'image', 'fake:steps=1 not yours %s' % tag())
        mjs.wait_task_final(b, theirs['id'], WAIT)
        before = (mjs.db_tasks_snapshot(a.user_id, b.user_id), mjs.db_event_seq(a.user_id),
                  mjs.db_event_seq(b.user_id))
        with mjs.unchanged(a.user_id, b.user_id):
            for body, status, code in [
                    ({'kind': 'sound', 'prompt': 'x'}, 422, 'invalid_field'),
                    ({'prompt': 'x'}, 422, 'invalid_field'),
                    ({'kind': 1, 'prompt': 'x'}, 422, 'invalid_field'),
                    ({'kind': 'image'}, 422, 'invalid_field'),
                    ({'kind': 'image', 'prompt': ''}, 422, 'invalid_field'),
                    ({'kind': 'image', 'prompt': ' \n\t '}, 422, 'invalid_field'),
                    ({'kind': 'image', 'prompt': 'x' * 4001}, 422, 'invalid_field'),
                    ({'kind': 'image', 'prompt': 42}, 422, 'invalid_field'),
                    ({'kind': 'image', 'prompt': ['x']}, 422, 'invalid_field'),
                    ({'kind': 'image', 'prompt': 'x', 'seconds': 4}, 422, 'invalid_field'),
                    ({'kind': 'video', 'prompt': 'x', 'seconds': 0}, 422, 'invalid_field'),
                    ({'kind': 'video', 'prompt': 'x', 'seconds': '4'}, 422, 'invalid_field'),
                    ({'kind': 'video', 'prompt': 'x', 'seconds': 4.5}, 422, 'invalid_field'),
                    ({'kind': 'video', 'prompt': 'x', 'size': 'big'}, 422, 'invalid_field'),
                    ({'kind': 'video', 'prompt': 'x', 'model': 7}, 422, 'invalid_field')]:
                mjs.assert_error(a.post('/api/tasks', body), status, code)
            mjs.assert_error(a.post('/api/tasks', raw=b'{"kind":"image",'), 400, 'bad_json')
            tid = theirs['id']
            mjs.assert_error(a.get('/api/tasks/' + tid), 404, 'not_found')
            mjs.assert_error(a.patch('/api/tasks/' + tid, {'blurred': True}), 404, 'not_found')
            mjs.assert_error(a.delete('/api/tasks/' + tid), 404, 'not_found')
            mjs.assert_error(a.post('/api/tasks/%s/restore' % tid), 404, 'not_found')
            mjs.assert_error(a.get('/api/tasks/not-a-uuid'), 404, 'not_found')
            mine = b.get('/api/tasks/' + tid).expect(200)
            for body in ({}, {'blurred': 'yes'}, {'blurred': 1}, {'blurred': None}):
                mjs.assert_error(b.patch('/api/tasks/' + tid, body), 422, 'invalid_field')
            mjs.assert_error(b.get('/api/tasks?deleted=2'), 422, 'invalid_field')
            mjs.assert_error(b.get('/api/tasks?cursor=nope'), 422, 'invalid_field')
            mjs.assert_error(b.get('/api/tasks?limit=0'), 422, 'invalid_field')
            mjs.assert_error(mjs.Client().get('/api/tasks'), 401, 'unauthorized')
            assert b.get('/api/tasks/' + tid).expect(200) == mine
        after = (mjs.db_tasks_snapshot(a.user_id, b.user_id), mjs.db_event_seq(a.user_id),
                 mjs.db_event_seq(b.user_id))
        assert after == before, 'tasks or events changed: %s' % mjs.short(json.dumps([before, after]), 600)
        assert mjs.list_tasks(a)['items'] == []

"""
Everything an upstream sends is untrusted: bytes that are not UTF-8, lone
surrogates, and a failure reason of 2,000 CJK characters (cut by the worker at a
byte limit) fail only their own reply or task, with a reason a user can read,
and the next reply and task of the same worker still succeed. Before, such a
task answer made the worker's per-tick task write fail (SQLSTATE 22021) on
every tick, and no task of any user moved again.
"""

import os

import mjs

CJK = '\u5199'


def worker_log():
    path = os.path.join(os.environ['MJS_STATE_DIR'], 'logs', 'worker.log')
    with open(path, encoding='utf-8', errors='replace') as f:
        return f.read()


@mjs.timeout(90)
def test_hostile_task_answers_fail_only_their_task_and_the_next_one_succeeds():
    with mjs.Client() as a:
        a.signup()
        before = worker_log().count('22021')
        image = mjs.create_task(a, 'image', 'fake:fail:hostile:steps=1 a cat %s' % mjs.unique_username(''))
        video = mjs.create_task(a, 'video', 'fake:fail:hostile:steps=1 waves %s' % mjs.unique_username(''))
        for task, prefix in ((image, 'the image upstream failed the task: '),
                             (video, 'the video upstream failed the job: ')):
            done = mjs.wait_task_final(a, task['id'], 30)
            assert done['status'] == 'failed', done
            assert done['error'].startswith(prefix + CJK * 50), mjs.short(done['error'])
            assert len(done['error'].encode('utf-8')) <= 300, len(done['error'].encode('utf-8'))
        good = mjs.create_task(a, 'image', 'fake:steps=1 a dog %s' % mjs.unique_username(''))
        done = mjs.wait_task_final(a, good['id'], 30)
        assert done['status'] == 'succeeded' and done['progress'] == 100, done
        assert worker_log().count('22021') == before, 'the worker logged SQLSTATE 22021'


@mjs.timeout(90)
def test_hostile_chat_bytes_and_error_fail_only_their_reply_and_the_next_one_completes():
    with mjs.Client() as a:
        a.signup()
        cid = a.create_conversation('hostile')['id']
        with mjs.SSE(a) as tab:
            sent = mjs.send_message(a, cid, 'hello', 'fake:hostile:tokens=5')
            mid = sent['assistant_message']['id']
            m = mjs.wait_final(a, cid, mid, 30)
            assert m['status'] == 'failed', m
            # the text so far is kept, its bytes that were not UTF-8 replaced
            assert m['content'].count('tok ') == 5 and '?' in m['content'], mjs.short(m['content'])
            assert CJK * 20 in m['error'], mjs.short(m['error'])
            assert len(m['error'].encode('utf-8')) <= 300, len(m['error'].encode('utf-8'))
            tab.wait_for(lambda e: e.event == 'message.updated' and e.json['id'] == mid
                         and e.json['status'] == 'failed', 20)
            sent = mjs.send_message(a, cid, 'again', 'fake:tokens=3')
            ok = mjs.wait_final(a, cid, sent['assistant_message']['id'], 30)
            assert ok['status'] == 'completed' and ok['content'] == 'tok ' * 3, ok
            assert not tab.closed, tab.close_reason

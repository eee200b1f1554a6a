"""
tasks: the image and video task protocols: Midjourney-proxy (submit imagine,
fetch) and an OpenAI-style video job (create, get, content), plus the fake's
own routes for tests (every task seen, the PNG of a finished image).
"""

import re
import struct
import time
import uuid
import zlib

from common import STATS, BadRequest, submit_knobs, hostile_json

class FakeTask:
    """One upstream job. stage: 0 at submit, 1 started at 0%, 2..steps in
    progress at (stage-1)*100/steps, steps+1 done (success or failure)."""

    def __init__(self, kind, prompt, knobs):
        self.id = ('%d' % (time.time_ns() // 1000)) + uuid.uuid4().hex[:6] if kind == 'image' \
            else 'video_' + uuid.uuid4().hex
        self.kind = kind
        self.prompt = prompt
        self.knobs = knobs
        self.stage = 0
        self.last_advance = time.monotonic()
        self.fetches = 0
        self.down_until = None

    def fetch(self):
        """One poll: advances at most one stage; returns False while "down"."""
        now = time.monotonic()
        self.fetches += 1
        if self.down_until is not None and now < self.down_until:
            return False
        last = self.knobs['steps'] + 1
        if self.knobs['hang']:
            last = min(last, 2)
        if self.stage < last and now - self.last_advance >= self.knobs['step']:
            self.stage += 1
            self.last_advance = now
            if self.stage == 2 and self.knobs['down'] > 0 and self.down_until is None:
                self.down_until = now + self.knobs['down']
        return True

    def progress(self):
        if self.stage <= 1:
            return 0
        if self.stage > self.knobs['steps']:
            return 100
        return (self.stage - 1) * 100 // self.knobs['steps']

    def done(self):
        return self.stage > self.knobs['steps']

    def summary(self):
        return {'id': self.id, 'kind': self.kind, 'prompt': self.prompt, 'fetches': self.fetches,
                'stage': self.stage}


TASKS = {}


def new_task(kind, prompt, knobs):
    task = FakeTask(kind, prompt, knobs)
    TASKS[task.id] = task
    STATS.add(kind + '_submits')
    return task


def fetch_task(req, kind, task_id):
    """The task after one poll, or None after answering 404 or 503."""
    STATS.add(kind + '_fetches')
    task = TASKS.get(task_id)
    if task is None or task.kind != kind:
        req.send_json(404, {'error': {'message': 'no such task %s' % task_id, 'code': 'not_found'}})
        return None
    up = task.fetch()
    req.note = 'task=%s stage=%d' % (task.id, task.stage)
    if not up:
        req.send_json(503, {'error': {'message': 'fake upstream is down for a while', 'code': 'down'}})
        return None
    return task


def base_url(req):
    return 'http://%s' % (req.headers.get('Host') or '127.0.0.1')


def check_prompt(request):
    prompt = request.get('prompt')
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest('prompt is required')
    return prompt


def handle_mj_imagine(req, match, body):
    if not req.headers.get('mj-api-secret'):
        req.send_json(401, {'code': 401, 'description': 'mj-api-secret header missing'})
        return
    request = req.json_body(body)
    prompt = check_prompt(request)
    knobs = submit_knobs(prompt)
    if knobs['submit_fail']:
        req.send_json(knobs['submit_fail'], {'code': knobs['submit_fail'],
                                             'description': 'fake submit failure'})
        return
    task = new_task('image', prompt, knobs)
    req.note = 'task=%s' % task.id
    req.send_json(200, {'code': 1, 'description': 'Submit success', 'result': task.id,
                        'properties': {'state': request.get('state', '')}})


def handle_mj_fetch(req, match, body):
    if not req.headers.get('mj-api-secret'):
        req.send_json(401, {'code': 401, 'description': 'mj-api-secret header missing'})
        return
    task = fetch_task(req, 'image', match.group(1))
    if task is None:
        return
    status = ['NOT_START', 'SUBMITTED'][task.stage] if task.stage <= 1 else 'IN_PROGRESS'
    answer = {'id': task.id, 'action': 'IMAGINE', 'prompt': task.prompt, 'status': status,
              'progress': '%d%%' % task.progress(), 'imageUrl': None, 'failReason': None}
    if task.done():
        if task.knobs['fail']:
            answer.update(status='FAILURE', failReason='fake failure')
            if task.knobs['hostile']:
                req.send_raw_json(200, hostile_json(answer, ['failReason']))
                return
        else:
            answer.update(status='SUCCESS', imageUrl='%s/fake/images/%s.png' % (base_url(req), task.id))
    req.send_json(200, answer)


def video_json(req, task):
    if task.stage == 0:
        status = 'queued'
    elif task.done():
        status = 'failed' if task.knobs['fail'] else 'completed'
    else:
        status = 'in_progress'
    answer = {'id': task.id, 'object': 'video', 'model': 'fake-video', 'status': status,
              'progress': task.progress(), 'prompt': task.prompt}
    if status == 'failed':
        answer['error'] = {'code': 'fake_failure', 'message': 'fake failure'}
    if status == 'completed' and task.knobs['cdn']:
        answer['url'] = 'https://cdn.fake.invalid/%s.mp4' % task.id
    return answer


def check_bearer(req):
    auth = req.headers.get('Authorization') or ''
    if not auth.startswith('Bearer ') or not auth[7:].strip():
        req.send_json(401, {'error': {'message': 'missing bearer key', 'code': 'unauthorized'}})
        return False
    return True


def handle_video_create(req, match, body):
    if not check_bearer(req):
        return
    request = req.json_body(body)
    prompt = check_prompt(request)
    knobs = submit_knobs(prompt)
    if knobs['submit_fail']:
        req.send_json(knobs['submit_fail'], {'error': {'message': 'fake submit failure',
                                                       'code': 'fake_failure'}})
        return
    task = new_task('video', prompt, knobs)
    req.note = 'task=%s' % task.id
    req.send_json(200, video_json(req, task))


def handle_video_get(req, match, body):
    if not check_bearer(req):
        return
    task = fetch_task(req, 'video', match.group(1))
    if task is None:
        return
    answer = video_json(req, task)
    if answer['status'] == 'failed' and task.knobs['hostile']:
        req.send_raw_json(200, hostile_json(answer, ['error', 'message']))
    else:
        req.send_json(200, answer)


def handle_video_content(req, match, body):
    """The "video": 'fake video ID' and then bytes 0-255 four times (so a test
    can tell any range apart), behind the bearer key as the real API is; a
    Range of one "bytes=A-B" (or "A-") gets 206, or 416 past the end."""
    if not check_bearer(req):
        return
    data = b'fake video ' + match.group(1).encode() + bytes(range(256)) * 4
    status, headers = 200, {}
    m = re.fullmatch(r'bytes=(\d+)-(\d*)', req.headers.get('Range') or '')
    if m:
        start = int(m.group(1))
        end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
        if start >= len(data) or start > end:
            req.status = 416
            req.send_response(416)
            req.send_header('Content-Range', 'bytes */%d' % len(data))
            req.send_header('Content-Length', '0')
            req.end_headers()
            return
        headers['Content-Range'] = 'bytes %d-%d/%d' % (start, end, len(data))
        data, status = data[start:end + 1], 206
    req.status = status
    req.send_response(status)
    job = TASKS.get(match.group(1))
    html = bool(job and job.knobs['html'])
    req.send_header('Content-Type', 'text/html; charset=utf-8' if html else 'video/mp4')
    req.send_header('Accept-Ranges', 'bytes')
    for k, v in headers.items():
        req.send_header(k, v)
    req.send_header('Content-Length', str(len(data)))
    req.end_headers()
    req.write(data)


def png(width, height, rgb):
    """A solid-colour PNG, built with the standard library."""
    def chunk(kind, data):
        return (struct.pack('!I', len(data)) + kind + data +
                struct.pack('!I', zlib.crc32(kind + data) & 0xffffffff))
    row = b'\x00' + bytes(rgb) * width
    return (b'\x89PNG\r\n\x1a\n' +
            chunk(b'IHDR', struct.pack('!IIBBBBB', width, height, 8, 2, 0, 0, 0)) +
            chunk(b'IDAT', zlib.compress(row * height)) + chunk(b'IEND', b''))


def handle_fake_image(req, match, body):
    digest = zlib.crc32(match.group(1).encode())
    data = png(64, 64, (digest & 0xff, (digest >> 8) & 0xff, (digest >> 16) & 0xff))
    req.status = 200
    req.send_response(200)
    req.send_header('Content-Type', 'image/png')
    req.send_header('Content-Length', str(len(data)))
    req.send_header('Cache-Control', 'max-age=3600')
    req.end_headers()
    req.write(data)


def handle_fake_tasks(req, match, body):
    tasks = [t.summary() for t in TASKS.values()]
    req.send_json(200, {'tasks': tasks})



ROUTES = [
    ('POST', re.compile(r'/mj/submit/imagine'), handle_mj_imagine),
    ('GET', re.compile(r'/mj/task/([^/]+)/fetch'), handle_mj_fetch),
    ('POST', re.compile(r'(?:/v1)?/videos'), handle_video_create),
    ('GET', re.compile(r'(?:/v1)?/videos/([^/]+)'), handle_video_get),
    ('GET', re.compile(r'(?:/v1)?/videos/([^/]+)/content'), handle_video_content),
    ('GET', re.compile(r'/fake/tasks'), handle_fake_tasks),
    ('GET', re.compile(r'/fake/images/([^/]+)\.png'), handle_fake_image),
]

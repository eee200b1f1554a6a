#!/usr/bin/env python3
"""
fake_upstream.py: a fake AI upstream for the integration tests, the benchmarks
and the demo. Python 3 standard library only.

    python3 dev/fake_upstream.py PORT

Listens on 127.0.0.1:PORT (threaded, one thread per request) and speaks:

    GET  /healthz                 200 {"status":"ok"}
    GET  /stats                   counters: chat requests, streams open, streams
                                  the client abandoned (e.g. the worker's stop)
    POST /v1/chat/completions     OpenAI chat completions; "stream": true answers
                                  text/event-stream chunks, then "data: [DONE]"
    POST /mj/submit/imagine       Midjourney-proxy image task (needs an
                                  mj-api-secret header): {"code":1,"result":ID}
    GET  /mj/task/ID/fetch        {"status","progress":"NN%","imageUrl","failReason"}
    POST /v1/videos               OpenAI-style video job (needs a Bearer key):
                                  {"id","status":"queued","progress":0}
    GET  /v1/videos/ID            {"id","status","progress","error"}
    GET  /v1/videos/ID/content    the "video" (a few bytes)
    GET  /fake/tasks              every image/video task seen: id, kind, prompt,
                                  fetches, stage (tests count submits per prompt)
    GET  /fake/images/ID.png      the "image" of a finished image task: a small
                                  PNG whose colour depends on ID (the web client
                                  shows it; browsers need a real image)

What a chat request does is chosen by its model name, "fake" followed by
colon-separated knobs (any name not starting with "fake" gets the defaults):

    tps=N          tokens per second (default 100; 0 = as fast as possible)
    tokens=N       number of tokens (default 20); each token is "tok "
    fail=CODE      answer HTTP CODE with an OpenAI-style JSON error body
    fail_after=N   stream N tokens, then drop the connection (no final chunk,
                   no [DONE], no end of the chunked body)
    hang           send the response headers, then nothing until the client
                   goes away (non-stream: not even headers)
    delay=S        send the response headers, then wait S seconds (a float)
                   before the first token (non-stream: before the answer)
    stamp          each token is "tok@T<ns> ": <ns> is CLOCK_REALTIME in
                   nanoseconds, 19 digits, taken just before the token is written

    e.g. "fake", "fake:tps=50:tokens=40", "fake:fail=500", "fake:fail_after=5",
         "fake:hang", "fake:stamp:tps=20", "fake:delay=2:tokens=10"

Image and video tasks take their knobs from the prompt's first word when it
starts with "fake" (same syntax). A task moves one stage per fetch (no faster
than one per `step` seconds): NOT_START/queued at submit, SUBMITTED/in_progress
0%, then IN_PROGRESS at 100/steps, 200/steps, ... and finally SUCCESS/completed
(100%) or FAILURE/failed:

    steps=N        progress steps (default 4: 25%, 50%, 75%, then done)
    step=S         at least S seconds (a float) between two stages (default 0)
    fail           end in FAILURE / failed with reason "fake failure"
    hang           stay at the first IN_PROGRESS stage forever
    down=S         on reaching the first IN_PROGRESS stage, answer every fetch
                   of this task with HTTP 503 for S seconds (an upstream that is
                   down, then back)
    submit_fail=CODE  answer the submit with HTTP CODE
    fail_times=N   fail and submit_fail hit only the first N submits of this
                   exact prompt, later ones run normally (default 0: every one);
                   a retried task fails, then succeeds

    e.g. "fake:steps=3 a cat", "fake:fail a dog", "fake:down=2:steps=2 a cow",
         "fake:fail:fail_times=1 a second chance"

An unknown knob is a 400 error, so a typo in a test cannot pass silently.
Routes live in one table (ROUTES); a protocol is a handler function per route.
One log line per request goes to stderr. SIGTERM and SIGINT stop the server.
"""

import json
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20
HANG_LIMIT_S = 3600          # a hanging response gives up after this long
DEFAULT_KNOBS = {'tps': 100.0, 'tokens': 20, 'fail': 0, 'fail_after': -1,
                 'hang': False, 'stamp': False, 'delay': 0.0}
TASK_KNOBS = {'steps': 4, 'step': 0.0, 'fail': False, 'hang': False, 'down': 0.0,
              'submit_fail': 0, 'fail_times': 0}


class Stats:
    """Counters shown by GET /stats, for tests that check what the worker did upstream."""

    def __init__(self):
        self.lock = threading.Lock()
        self.values = {'chat_requests': 0, 'streams_open': 0, 'streams_abandoned': 0,
                       'image_submits': 0, 'image_fetches': 0, 'video_submits': 0,
                       'video_fetches': 0}

    def add(self, key, n=1):
        with self.lock:
            self.values[key] += n

    def snapshot(self):
        with self.lock:
            return dict(self.values)


STATS = Stats()


class ClientGone(Exception):
    """The client closed its connection while we were answering."""


class BadRequest(Exception):
    pass


# ---------------------------------------------------------------------------
# Knobs
# ---------------------------------------------------------------------------

def parse_knobs(model, defaults=None):
    """The knobs a model name (or a task prompt's first word) asks for, over
    defaults (DEFAULT_KNOBS). Raises BadRequest on a bad knob."""
    base = DEFAULT_KNOBS if defaults is None else defaults
    knobs = dict(base)
    parts = model.split(':')
    if parts[0] != 'fake':
        return knobs
    for part in parts[1:]:
        name, sep, value = part.partition('=')
        if name not in knobs:
            raise BadRequest('unknown knob "%s" in model "%s"' % (name, model))
        default = base[name]
        try:
            if isinstance(default, bool):
                if sep:
                    raise ValueError
                knobs[name] = True
            elif isinstance(default, float):
                knobs[name] = float(value)
            else:
                knobs[name] = int(value)
        except ValueError:
            raise BadRequest('bad value for knob "%s" in model "%s"' % (name, model))
    if defaults is not None:
        return knobs
    if knobs['tps'] < 0 or knobs['tokens'] < 0 or knobs['delay'] < 0:
        raise BadRequest('tps, tokens and delay must not be negative')
    if knobs['fail'] and not 400 <= knobs['fail'] <= 599:
        raise BadRequest('fail must be an HTTP error status (400-599)')
    return knobs


def parse_task_knobs(prompt):
    """The knobs of an image/video prompt (its first word), over TASK_KNOBS."""
    first = prompt.split(None, 1)[0] if prompt.split() else ''
    knobs = parse_knobs(first if first.startswith('fake') else '', TASK_KNOBS)
    if knobs['steps'] < 1 or knobs['step'] < 0 or knobs['down'] < 0:
        raise BadRequest('steps must be at least 1, step and down not negative')
    if knobs['submit_fail'] and not 400 <= knobs['submit_fail'] <= 599:
        raise BadRequest('submit_fail must be an HTTP error status (400-599)')
    if knobs['fail_times'] < 0:
        raise BadRequest('fail_times must be 0 or more')
    return knobs


SUBMITS = {}                 # prompt -> submits seen, for fail_times
SUBMITS_LOCK = threading.Lock()


def submit_knobs(prompt):
    """The knobs of one submit of prompt: past the first fail_times submits of
    this prompt, fail and submit_fail are off."""
    knobs = parse_task_knobs(prompt)
    with SUBMITS_LOCK:
        SUBMITS[prompt] = n = SUBMITS.get(prompt, 0) + 1
    if knobs['fail_times'] and n > knobs['fail_times']:
        knobs.update(fail=False, submit_fail=0)
    return knobs


def token_text(knobs):
    if knobs['stamp']:
        return 'tok@T%019d ' % time.time_ns()
    return 'tok '


# ---------------------------------------------------------------------------
# Handlers: each takes (req, match, body) and answers through req
# ---------------------------------------------------------------------------

def handle_healthz(req, match, body):
    req.send_json(200, {'status': 'ok'})


def handle_stats(req, match, body):
    req.send_json(200, STATS.snapshot())


def handle_chat_completions(req, match, body):
    request = req.json_body(body)
    model = request.get('model')
    if not isinstance(model, str) or not model:
        raise BadRequest('model is required')
    if not isinstance(request.get('messages'), list):
        raise BadRequest('messages must be a list')
    knobs = parse_knobs(model)
    STATS.add('chat_requests')
    req.note = 'model=%s' % model

    if knobs['fail']:
        req.send_json(knobs['fail'], {'error': {
            'message': 'fake upstream failure (%s)' % model,
            'type': 'server_error' if knobs['fail'] >= 500 else 'invalid_request_error',
            'code': 'fake_failure'}})
        return
    if request.get('stream') is True:
        stream_chat(req, model, knobs)
        return
    if knobs['hang']:
        req.wait_for_client_to_leave()
        return
    if knobs['delay'] > 0:
        time.sleep(knobs['delay'])
    if knobs['tps'] > 0:
        time.sleep(knobs['tokens'] / knobs['tps'])
    content = ''.join(token_text(knobs) for _ in range(knobs['tokens']))
    req.send_json(200, {
        'id': 'chatcmpl-%s' % uuid.uuid4().hex, 'object': 'chat.completion',
        'created': int(time.time()), 'model': model,
        'choices': [{'index': 0, 'message': {'role': 'assistant', 'content': content},
                     'finish_reason': 'stop'}],
        'usage': {'prompt_tokens': 0, 'completion_tokens': knobs['tokens'],
                  'total_tokens': knobs['tokens']}})


def stream_chat(req, model, knobs):
    """The streamed answer: one chunk per token, paced at tps, then stop and [DONE]."""
    cid = 'chatcmpl-%s' % uuid.uuid4().hex
    created = int(time.time())

    def chunk(delta, finish_reason):
        return {'id': cid, 'object': 'chat.completion.chunk', 'created': created, 'model': model,
                'choices': [{'index': 0, 'delta': delta, 'finish_reason': finish_reason}]}

    req.start_event_stream()
    STATS.add('streams_open')
    try:
        if knobs['hang']:
            req.wait_for_client_to_leave()
            return
        if knobs['delay'] > 0:
            time.sleep(knobs['delay'])
        start = time.monotonic()
        for i in range(knobs['tokens']):
            if i == knobs['fail_after']:
                req.note += ' dropped_after=%d' % i
                req.drop_connection()
                return
            if knobs['tps'] > 0:
                delay = start + i / knobs['tps'] - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            delta = {'role': 'assistant', 'content': token_text(knobs)} if i == 0 \
                else {'content': token_text(knobs)}
            req.send_event(chunk(delta, None))
        if knobs['fail_after'] == knobs['tokens']:
            req.drop_connection()
            return
        req.send_event(chunk({}, 'stop'))
        req.send_event('[DONE]')
        req.end_chunked()
    except ClientGone:
        STATS.add('streams_abandoned')
        req.note += ' client_gone'
    finally:
        STATS.add('streams_open', -1)


# ---------------------------------------------------------------------------
# Image (Midjourney-proxy) and video (OpenAI-style) tasks
# ---------------------------------------------------------------------------

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
TASKS_LOCK = threading.Lock()


def new_task(kind, prompt, knobs):
    task = FakeTask(kind, prompt, knobs)
    with TASKS_LOCK:
        TASKS[task.id] = task
    STATS.add(kind + '_submits')
    return task


def fetch_task(req, kind, task_id):
    """The task after one poll, or None after answering 404 or 503."""
    STATS.add(kind + '_fetches')
    with TASKS_LOCK:
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
    if task is not None:
        req.send_json(200, video_json(req, task))


def handle_video_content(req, match, body):
    data = b'fake video ' + match.group(1).encode()
    req.status = 200
    req.send_response(200)
    req.send_header('Content-Type', 'video/mp4')
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
    with TASKS_LOCK:
        tasks = [t.summary() for t in TASKS.values()]
    req.send_json(200, {'tasks': tasks})


# (method, path regex, handler)
ROUTES = [
    ('GET', re.compile(r'/healthz'), handle_healthz),
    ('GET', re.compile(r'/stats'), handle_stats),
    ('POST', re.compile(r'/v1/chat/completions'), handle_chat_completions),
    ('POST', re.compile(r'/mj/submit/imagine'), handle_mj_imagine),
    ('GET', re.compile(r'/mj/task/([^/]+)/fetch'), handle_mj_fetch),
    ('POST', re.compile(r'(?:/v1)?/videos'), handle_video_create),
    ('GET', re.compile(r'(?:/v1)?/videos/([^/]+)'), handle_video_get),
    ('GET', re.compile(r'(?:/v1)?/videos/([^/]+)/content'), handle_video_content),
    ('GET', re.compile(r'/fake/tasks'), handle_fake_tasks),
    ('GET', re.compile(r'/fake/images/([^/]+)\.png'), handle_fake_image),
]


# ---------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'mjs-fake-upstream/1'

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def dispatch(self):
        self.note = ''
        self.status = 0
        try:
            self.route()
        finally:
            sys.stderr.write('info method=%s path=%s status=%s %s\n' % (
                self.command, self.path, self.status or '-', self.note.strip()))

    def route(self):
        path = self.path.split('?', 1)[0]
        allowed = []
        for method, pattern, handler in ROUTES:
            match = pattern.fullmatch(path)
            if not match:
                continue
            if method != self.command:
                allowed.append(method)
                continue
            try:
                handler(self, match, self.read_body())
            except BadRequest as e:
                self.send_json(400, {'error': {'message': str(e), 'type': 'invalid_request_error',
                                               'code': 'bad_request'}})
            except ClientGone:
                self.note += ' client_gone'
                self.close_connection = True
            return
        if allowed:
            self.send_json(405, {'error': {'message': 'method not allowed', 'code': 'method'}})
        else:
            self.send_json(404, {'error': {'message': 'no such route', 'code': 'not_found'}})

    def read_body(self):
        try:
            length = int(self.headers.get('Content-Length') or 0)
        except ValueError:
            raise BadRequest('bad Content-Length')
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            raise BadRequest('body too large')
        return self.rfile.read(length) if length else b''

    def json_body(self, body):
        try:
            value = json.loads(body.decode('utf-8'))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest('body is not JSON')
        if not isinstance(value, dict):
            raise BadRequest('body must be a JSON object')
        return value

    def write(self, data):
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise ClientGone()

    def send_json(self, status, value):
        data = (json.dumps(value) + '\n').encode('utf-8')
        self.status = status
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.write(data)

    def start_event_stream(self):
        self.status = 200
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Cache-Control', 'no-cache')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        self.write(b'')

    def send_event(self, value):
        data = value if isinstance(value, str) else json.dumps(value, separators=(',', ':'))
        payload = ('data: %s\n\n' % data).encode('utf-8')
        self.write(b'%x\r\n%s\r\n' % (len(payload), payload))

    def end_chunked(self):
        self.write(b'0\r\n\r\n')

    def drop_connection(self):
        """Ends the connection abruptly, as an upstream that crashed mid-answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def wait_for_client_to_leave(self):
        """Blocks until the client closes the connection (or HANG_LIMIT_S passes)."""
        self.close_connection = True
        deadline = time.monotonic() + HANG_LIMIT_S
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 1.0)
            if readable:
                try:
                    if not self.connection.recv(4096):
                        raise ClientGone()
                except OSError:
                    raise ClientGone()

    def log_request(self, code='-', size='-'):
        pass    # dispatch() writes one line per request when it is done

    def log_message(self, fmt, *args):
        sys.stderr.write('warn %s\n' % (fmt % args))


class Server(ThreadingHTTPServer):
    daemon_threads = True           # a hanging stream never blocks shutdown
    request_queue_size = 1024
    allow_reuse_address = True


def main(argv):
    if len(argv) != 1 or not argv[0].isdigit():
        sys.stderr.write('usage: fake_upstream.py PORT\n')
        return 2
    port = int(argv[0])
    server = Server(('127.0.0.1', port), Handler)

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write('info fake upstream listening addr=127.0.0.1:%d\n' % port)
    sys.stderr.flush()
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    sys.stderr.write('info fake upstream stopped\n')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

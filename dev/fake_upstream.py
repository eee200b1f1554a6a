#!/usr/bin/env python3
"""
fake_upstream.py: a fake AI upstream for the integration tests, the benchmarks
and the demo. Python 3 standard library only.

    python3 dev/fake_upstream.py PORT

Listens on 127.0.0.1:PORT and speaks (HTTP/1.1, keep-alive):

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
    echo           the reply repeats the request: one token "<role>: <content>\n"
                   per message sent (tokens= is ignored), so tests can check
                   what conversation the worker sent
    hostile        every token is "tok " followed by bytes that are not UTF-8
                   (raw \xff\xfe\xc0\x80) and a lone surrogate (\ud800), and
                   the stream ends with an error event whose message is 2,000
                   CJK characters and raw invalid bytes (no [DONE])

    A request's "max_tokens" below tokens= is honoured as a real upstream does:
    that many tokens, then finish_reason "length".

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
    hostile        with fail: the failure's reason (failReason / error.message)
                   is 2,000 CJK characters and raw bytes that are not UTF-8
    cdn            video: the completed job names its own "url" on another
                   origin (https://cdn.fake.invalid/ID.mp4), as a CDN link
    html           video: the content route serves the file as text/html (what
                   a hostile upstream could do to run a page on our origin)

    e.g. "fake:steps=3 a cat", "fake:fail a dog", "fake:down=2:steps=2 a cow",
         "fake:fail:fail_times=1 a second chance"

An unknown knob is a 400 error, so a typo in a test cannot pass silently.
Routes live in one table (ROUTES); a protocol is a handler function per route.
One log line per request goes to stderr. SIGTERM and SIGINT stop the server.

One thread, one asyncio event loop, a small HTTP/1.1 parser of its own: the
benchmark runs hundreds of streams at once, and a thread per stream sleeping
between tokens cost more CPU than the server under test. A stream is a timer
per token (loop.call_at on its own schedule, start + i/tps); each token is one
write, without waiting for the client to read it, up to a 64 KiB buffer, past
which the stream waits for the client (as a blocking write did). A client that
closes its connection is noticed at once (streams_abandoned).
"""

import asyncio
import email.utils
import html
import json
import re
import signal
import struct
import sys
import time
import traceback
import uuid
import zlib
from http.server import BaseHTTPRequestHandler

MAX_BODY = 1 << 20
HANG_LIMIT_S = 3600          # a hanging response gives up after this long
DEFAULT_KNOBS = {'tps': 100.0, 'tokens': 20, 'fail': 0, 'fail_after': -1,
                 'hang': False, 'stamp': False, 'delay': 0.0, 'echo': False, 'hostile': False}
TASK_KNOBS = {'steps': 4, 'step': 0.0, 'fail': False, 'hang': False, 'down': 0.0,
              'submit_fail': 0, 'fail_times': 0, 'hostile': False, 'cdn': False, 'html': False}

# What "hostile" sends: text a real upstream may send, cut at a byte limit or
# not UTF-8 at all. Raw bytes, so it is spliced into JSON by hand.
HOSTILE_TEXT = ('\u5199' * 2000).encode('utf-8') + b' \xff\xfe\xc0\x80 end'


def hostile_json(value, field_path):
    """json.dumps(value) with the string at field_path replaced by HOSTILE_TEXT's raw bytes."""
    marker = '@@HOSTILE@@'
    target = value
    for key in field_path[:-1]:
        target = target[key]
    target[field_path[-1]] = marker
    return json.dumps(value).encode('utf-8').replace(marker.encode(), HOSTILE_TEXT)


class Stats:
    """Counters shown by GET /stats, for tests that check what the worker did upstream."""

    def __init__(self):
        self.values = {'chat_requests': 0, 'streams_open': 0, 'streams_abandoned': 0,
                       'image_submits': 0, 'image_fetches': 0, 'video_submits': 0,
                       'video_fetches': 0}

    def add(self, key, n=1):
        self.values[key] += n

    def snapshot(self):
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


def submit_knobs(prompt):
    """The knobs of one submit of prompt: past the first fail_times submits of
    this prompt, fail and submit_fail are off."""
    knobs = parse_task_knobs(prompt)
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
    if knobs['echo']:
        knobs['texts'] = ['%s: %s\n' % (m.get('role'), m.get('content')) for m in request['messages']
                          if isinstance(m, dict)]
        knobs['tokens'] = len(knobs['texts'])
    knobs['finish_reason'] = 'stop'
    max_tokens = request.get('max_tokens')
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and 0 < max_tokens < knobs['tokens']:
        knobs['tokens'] = max_tokens            # as a real upstream: stop there, saying why
        knobs['finish_reason'] = 'length'
    if request.get('stream') is True:
        ChatStream(req, model, knobs).start()
        return
    if knobs['hang']:
        req.wait_for_client_to_leave()
        return

    def answer():
        content = ''.join(knobs['texts']) if knobs['echo'] else \
            ''.join(token_text(knobs) for _ in range(knobs['tokens']))
        req.send_json(200, {
            'id': 'chatcmpl-%s' % uuid.uuid4().hex, 'object': 'chat.completion',
            'created': int(time.time()), 'model': model,
            'choices': [{'index': 0, 'message': {'role': 'assistant', 'content': content},
                         'finish_reason': 'stop'}],
            'usage': {'prompt_tokens': 0, 'completion_tokens': knobs['tokens'],
                      'total_tokens': knobs['tokens']}})

    wait = knobs['delay'] + (knobs['tokens'] / knobs['tps'] if knobs['tps'] > 0 else 0)
    if wait > 0:
        req.answer_later(wait, answer)      # the loop goes on meanwhile
    else:
        answer()


class ChatStream:
    """The streamed answer: one chunk per token, paced at tps from the first
    token (start + i/tps, so a late token does not delay the next ones), then
    stop and [DONE]. Driven by the event loop's timers, one call per token; the
    chunks are the bytes json.dumps(chunk, separators=(',', ':')) gives, built
    from a prefix and a suffix computed once."""

    def __init__(self, req, model, knobs):
        self.req = req
        self.knobs = knobs
        self.tokens = knobs['tokens']
        self.tps = knobs['tps']
        self.fail_after = knobs['fail_after']
        self.stamp = knobs['stamp']
        self.texts = knobs.get('texts')
        self.i = 0
        self.start_time = 0.0
        self.timer = None
        self.waiting = False        # for the client to read what is buffered
        self.done = False
        head = '{"id":"chatcmpl-%s","object":"chat.completion.chunk","created":%d,"model":%s,' \
               '"choices":[{"index":0,"delta":{' % (uuid.uuid4().hex, int(time.time()), json.dumps(model))
        self.first_prefix = (head + '"role":"assistant","content":').encode()
        self.prefix = (head + '"content":').encode()
        self.suffix = b'},"finish_reason":null}]}\n\n'
        self.tail = self.event(head + '},"finish_reason":%s}]}' % json.dumps(knobs['finish_reason'])) + \
            self.event('[DONE]') + b'0\r\n\r\n'
        if knobs['hostile']:
            error = b'data: ' + hostile_json({'error': {'message': '', 'type': 'server_error'}},
                                             ['error', 'message']) + b'\n\n'
            self.tail = b'%x\r\n%s\r\n' % (len(error), error) + b'0\r\n\r\n'

    @staticmethod
    def event(data):
        payload = ('data: %s\n\n' % data).encode('utf-8')
        return b'%x\r\n%s\r\n' % (len(payload), payload)

    def start(self):
        req = self.req
        req.start_event_stream()
        STATS.add('streams_open')
        req.on_client_gone = self.client_gone
        req.on_writable = self.writable
        if self.knobs['hang']:
            req.wait_for_client_to_leave(self.finish)
            return
        self.start_time = LOOP.time() + self.knobs['delay']
        if self.knobs['delay'] > 0:
            self.timer = LOOP.call_at(self.start_time, self.tick)
        else:
            self.tick()

    def tick(self):
        self.timer = None
        req = self.req
        try:
            while not self.done:
                i = self.i
                if i == self.tokens:
                    if self.fail_after == i:
                        req.drop_connection()
                    else:
                        req.write(self.tail)
                    self.finish()
                    return
                if i == self.fail_after:
                    req.note += ' dropped_after=%d' % i
                    req.drop_connection()
                    self.finish()
                    return
                if self.tps > 0:
                    due = self.start_time + i / self.tps
                    if due > LOOP.time():
                        self.timer = LOOP.call_at(due, self.tick)
                        return
                if req.conn.paused:
                    self.waiting = True
                    return
                if self.texts is not None:
                    text = json.dumps(self.texts[i]).encode()
                elif self.knobs['hostile']:
                    text = b'"tok \xff\xfe\xc0\x80 \\ud800 "'
                else:
                    text = b'"tok@T%019d "' % time.time_ns() if self.stamp else b'"tok "'
                payload = b'data: %s%s%s' % (self.first_prefix if i == 0 else self.prefix, text, self.suffix)
                req.write(b'%x\r\n%s\r\n' % (len(payload), payload))
                self.i = i + 1
        except ClientGone:
            self.client_gone()
        except Exception:
            traceback.print_exc()
            req.drop_connection()
            self.finish()

    def writable(self):
        if self.waiting and not self.done:
            self.waiting = False
            self.tick()

    def finish(self):
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        STATS.add('streams_open', -1)
        self.req.finish()

    def client_gone(self):
        if self.done:
            return
        STATS.add('streams_abandoned')
        self.req.note += ' client_gone'
        self.req.close_connection = True
        self.finish()


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
# HTTP plumbing: one asyncio event loop in one thread. A connection (Conn)
# parses its requests itself and answers them one at a time; a Request offers
# handlers what BaseHTTPRequestHandler did (headers, send_json, send_response,
# send_header, end_headers, write) plus ways to answer later without blocking.
# ---------------------------------------------------------------------------

LOOP = None                  # the event loop, set by main()
MAX_HEAD = 65536             # request line and headers
HEAD_END = re.compile(rb'\r?\n\r?\n')
SERVER_VERSION = 'mjs-fake-upstream/1 Python/' + sys.version.split()[0]
RESPONSES = BaseHTTPRequestHandler.responses
_date_cache = [0, '']


def http_date():
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache[0], _date_cache[1] = now, email.utils.formatdate(now, usegmt=True)
    return _date_cache[1]


def log_line(text):
    sys.stderr.write(text)


class Headers(dict):
    """Request headers by lower-case name; the first of repeated headers wins."""

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


class Request:
    """One request on a connection. A handler answers through it; when it
    returns, the request is over (one log line), unless it is pending: a stream,
    a hang or a delayed answer, which call finish() when they are done."""

    def __init__(self, conn, command, path, headers, close_connection):
        self.conn = conn
        self.command = command
        self.path = path
        self.headers = headers
        self.close_connection = close_connection
        self.note = ''
        self.status = 0
        self.pending = False
        self.active = True
        self.timer = None
        self.on_client_gone = None   # called instead of the default when the client leaves
        self.on_writable = None      # called when the client has read what was buffered
        self.head = []

    # -- what handlers use, as in BaseHTTPRequestHandler

    def send_response(self, code, message=None):
        if message is None:
            message = RESPONSES[code][0] if code in RESPONSES else ''
        self.head = ['HTTP/1.1 %d %s\r\n' % (code, message),
                     'Server: %s\r\n' % SERVER_VERSION, 'Date: %s\r\n' % http_date()]

    def send_header(self, keyword, value):
        self.head.append('%s: %s\r\n' % (keyword, value))
        if keyword.lower() == 'connection':
            if value.lower() == 'close':
                self.close_connection = True
            elif value.lower() == 'keep-alive':
                self.close_connection = False

    def end_headers(self):
        self.head.append('\r\n')
        data = ''.join(self.head).encode('latin-1', 'strict')
        self.head = []
        self.write(data)

    def write(self, data):
        if self.conn.lost:
            raise ClientGone()
        self.conn.transport.write(data)

    def json_body(self, body):
        try:
            value = json.loads(body.decode('utf-8'))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest('body is not JSON')
        if not isinstance(value, dict):
            raise BadRequest('body must be a JSON object')
        return value

    def send_json(self, status, value):
        self.send_raw_json(status, json.dumps(value).encode('utf-8'))

    def send_raw_json(self, status, data):
        """A JSON body given as bytes (which may hold bytes that are not UTF-8)."""
        data += b'\n'
        self.status = status
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.write(data)

    def send_error(self, code, message):
        """BaseHTTPRequestHandler.send_error: an HTML error page, then close."""
        log_line('warn code %d, message %s\n' % (code, message))
        explain = RESPONSES[code][1] if code in RESPONSES else ''
        body = (BaseHTTPRequestHandler.error_message_format % {
            'code': code, 'message': html.escape(message, quote=False),
            'explain': html.escape(explain, quote=False)}).encode('UTF-8', 'replace')
        self.status = code
        self.send_response(code, message)
        self.send_header('Connection', 'close')
        self.send_header('Content-Type', BaseHTTPRequestHandler.error_content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.write(body)

    def start_event_stream(self):
        self.status = 200
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Cache-Control', 'no-cache')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        self.pending = True

    def drop_connection(self):
        """Ends the connection once the request is over, without ending the
        answer: an upstream that crashed mid-answer."""
        self.close_connection = True

    def wait_for_client_to_leave(self, on_limit=None):
        """The request stays pending until the client closes the connection
        (or HANG_LIMIT_S passes: then on_limit, or the end of the request)."""
        self.close_connection = True
        self.pending = True
        self.timer = LOOP.call_later(HANG_LIMIT_S, on_limit or self.finish)

    def answer_later(self, wait, answer):
        """Calls answer() in wait seconds, then ends the request."""
        self.pending = True

        def run():
            self.timer = None
            if not self.active:
                return
            try:
                answer()
            except ClientGone:
                self.note += ' client_gone'
                self.close_connection = True
            except Exception:
                traceback.print_exc()
                self.close_connection = True
            self.finish()
        self.timer = LOOP.call_later(wait, run)

    # -- the request's end

    def client_gone(self):
        """The client closed its connection (or the connection broke)."""
        if not self.active:
            return
        if self.on_client_gone is not None:
            self.on_client_gone()
            return
        self.note += ' client_gone'
        self.close_connection = True
        self.finish()

    def finish(self):
        if not self.active:
            return
        self.active = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.command is not None:
            log_line('info method=%s path=%s status=%s %s\n' % (
                self.command, self.path, self.status or '-', self.note.strip()))
        self.conn.request_done(self)


def route(req, body, body_error):
    path = req.path.split('?', 1)[0]
    allowed = []
    for method, pattern, handler in ROUTES:
        match = pattern.fullmatch(path)
        if not match:
            continue
        if method != req.command:
            allowed.append(method)
            continue
        try:
            if body_error:
                raise BadRequest(body_error)
            handler(req, match, body)
        except BadRequest as e:
            req.send_json(400, {'error': {'message': str(e), 'type': 'invalid_request_error',
                                          'code': 'bad_request'}})
        except ClientGone:
            req.note += ' client_gone'
            req.close_connection = True
            req.pending = False
        return
    if allowed:
        req.send_json(405, {'error': {'message': 'method not allowed', 'code': 'method'}})
    else:
        req.send_json(404, {'error': {'message': 'no such route', 'code': 'not_found'}})


def dispatch(req, body, body_error):
    try:
        route(req, body, body_error)
    except ClientGone:
        req.note += ' client_gone'
        req.close_connection = True
        req.pending = False
    except Exception:
        traceback.print_exc()
        req.close_connection = True
        req.pending = False
    if not req.pending:
        req.finish()


class Conn(asyncio.Protocol):
    """One client connection: parses requests (request line, headers, a
    Content-Length body) and dispatches them one at a time."""

    def connection_made(self, transport):
        self.transport = transport
        self.buf = bytearray()
        self.req = None
        self.lost = False
        self.paused = False
        self.processing = False
        self.sent_continue = False

    def data_received(self, data):
        self.buf += data
        if self.req is None and not self.processing:
            self.process()

    def eof_received(self):
        if self.req is not None:
            self.req.client_gone()
        return False                # close the connection

    def connection_lost(self, exc):
        self.lost = True
        if self.req is not None:
            self.req.client_gone()

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        # Not from here: asyncio calls this in the middle of its own write
        # bookkeeping, and a write or close from it can run connection_lost twice.
        self.paused = False
        if self.req is not None and self.req.on_writable is not None:
            LOOP.call_soon(self.req.on_writable)

    def request_done(self, req):
        if self.req is req:
            self.req = None
        if self.lost:
            return
        if req.close_connection:
            self.transport.close()
        elif self.buf and not self.processing:
            self.process()

    def process(self):
        self.processing = True
        try:
            while self.req is None and not self.lost and not self.transport.is_closing():
                if not self.parse_one():
                    break
        finally:
            self.processing = False

    def fail(self, code, message):
        req = Request(self, None, '', Headers(), True)
        self.req = req
        try:
            req.send_error(code, message)
        except ClientGone:
            pass
        req.finish()

    def parse_one(self):
        """Dispatches the request at the start of the buffer; False when it
        has not fully arrived yet (or the connection is to close)."""
        buf = self.buf
        while buf[:1] in (b'\r', b'\n') and buf:
            del buf[:1]             # stray line ends between requests
        m = HEAD_END.search(buf)
        if m is None:
            if len(buf) > MAX_HEAD:
                self.fail(431, 'Request header fields too large')
            return False
        if m.start() > MAX_HEAD:
            self.fail(431, 'Request header fields too large')
            return False
        lines = bytes(buf[:m.start()]).decode('iso-8859-1').split('\n')
        words = lines[0].rstrip('\r').split()
        if len(words) != 3:
            self.fail(400, 'Bad request syntax (%r)' % lines[0].rstrip('\r'))
            return False
        command, path, version = words
        try:
            if not version.startswith('HTTP/'):
                raise ValueError
            major, minor = version.split('/', 1)[1].split('.')
            version_number = int(major), int(minor)
        except ValueError:
            self.fail(400, 'Bad request version (%r)' % version)
            return False
        if version_number >= (2, 0):
            self.fail(505, 'Invalid HTTP version (%s)' % version[5:])
            return False
        headers = Headers()
        last = None
        for line in lines[1:]:
            line = line.rstrip('\r')
            if line[:1] in (' ', '\t') and last is not None:
                headers[last] += ' ' + line.strip()
                continue
            name, sep, value = line.partition(':')
            if not sep:
                continue
            last = name.strip().lower()
            if last not in headers:
                headers[last] = value.strip()
            else:
                last = None
        close = version_number < (1, 1)
        conntype = headers.get('Connection', '').lower()
        if conntype == 'close':
            close = True
        elif conntype == 'keep-alive':
            close = False

        body, body_error, end = b'', None, m.end()
        try:
            length = int(headers.get('Content-Length') or 0)
        except ValueError:
            length, body_error = 0, 'bad Content-Length'
        if not body_error and (length < 0 or length > MAX_BODY):
            body_error = 'body too large'
        if body_error:
            close = True        # what follows the headers cannot be read
        elif length:
            if len(buf) < end + length:
                if (not self.sent_continue and version_number >= (1, 1) and
                        headers.get('Expect', '').lower() == '100-continue'):
                    self.sent_continue = True
                    self.transport.write(b'HTTP/1.1 100 Continue\r\n\r\n')
                return False
            body = bytes(buf[end:end + length])
            end += length
        del buf[:end]
        self.sent_continue = False
        if path.startswith('//'):
            path = '/' + path.lstrip('/')

        if command not in ('GET', 'POST'):
            self.fail(501, 'Unsupported method (%r)' % command)
            return False
        req = Request(self, command, path, headers, close)
        self.req = req
        dispatch(req, body, body_error)
        return True


def main(argv):
    global LOOP
    if len(argv) != 1 or not argv[0].isdigit():
        sys.stderr.write('usage: fake_upstream.py PORT\n')
        return 2
    port = int(argv[0])
    LOOP = asyncio.new_event_loop()
    asyncio.set_event_loop(LOOP)
    server = LOOP.run_until_complete(LOOP.create_server(
        Conn, '127.0.0.1', port, backlog=1024, reuse_address=True))
    for signum in (signal.SIGTERM, signal.SIGINT):
        LOOP.add_signal_handler(signum, LOOP.stop)
    sys.stderr.write('info fake upstream listening addr=127.0.0.1:%d\n' % port)
    sys.stderr.flush()
    LOOP.run_forever()
    server.close()
    sys.stderr.write('info fake upstream stopped\n')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

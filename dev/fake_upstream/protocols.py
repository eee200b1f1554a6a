"""
protocols: the chat protocols beside OpenAI chat completions, each with its
real framing (DESIGN.md "Upstreams"):

    POST /v1/responses                       OpenAI Responses: typed events
                                             (response.output_text.delta,
                                             response.reasoning_summary_text.delta,
                                             response.completed / incomplete / failed)
    POST /v1/messages                        Anthropic Messages (needs x-api-key and
                                             anthropic-version): event: lines,
                                             thinking and text blocks, ping,
                                             message_delta with stop_reason and usage
    POST /v1beta/models/MODEL:streamGenerateContent?alt=sse
                                             Gemini (needs x-goog-api-key): parts,
                                             thought parts, finishReason, usageMetadata;
                                             the stream just ends
    GET  /v1/models, /v1beta/models          the models lists (mjsctl check)

The knobs are the chat ones (common.DEFAULT_KNOBS, from the model name), and:

    think=N        N reasoning tokens ("hmm ") before the answer
    error_after=N  after N answer tokens, the protocol's own error event, then
                   the end of the stream (fail_after=N drops the connection)

Every stream is paced like the chat one (one write per token, start + i/tps)
and reports usage: input tokens = messages sent, output = tokens sent.
"""

import json
import re
import time
import traceback
import urllib.parse
import uuid

import common
from common import STATS, BadRequest, ClientGone, HOSTILE_TEXT, parse_knobs


def chunk(payload):
    """payload as one chunk of the chunked body (nothing for no bytes: an empty chunk ends the body)."""
    return b'%x\r\n%s\r\n' % (len(payload), payload) if payload else b''


def token(knobs, texts, i):
    if texts is not None:
        return texts[i]
    if knobs['hostile']:
        return 'tok \udcff\udcfe\udcc0\udc80 '
    return 'tok@T%019d ' % time.time_ns() if knobs['stamp'] else 'tok '


def dumps(value):
    """JSON as the APIs send it; lone surrogates (hostile) go out as raw bytes."""
    return json.dumps(value, separators=(',', ':'), ensure_ascii=False).encode('utf-8', 'surrogateescape')


class FrameStream(common.PacedStream):
    """One streamed answer in a protocol's framing: fmt.head(), think reasoning
    frames, the answer's frames paced at tps, then fmt.tail() (or the knobs'
    error or dropped connection)."""

    def __init__(self, req, knobs, fmt, texts=None):
        self.req, self.knobs, self.fmt, self.texts = req, knobs, fmt, texts
        self.think = knobs['think']
        self.total = self.think + knobs['tokens']
        self.i = 0
        self.timer = None
        self.waiting = False
        self.done = False
        self.start_time = 0.0

    def start(self):
        req = self.req
        req.start_event_stream()
        STATS.add('streams_open')
        req.on_client_gone = self.client_gone
        req.on_writable = self.writable
        if self.knobs['hang']:
            req.write(chunk(self.fmt.head()))
            req.wait_for_client_to_leave(self.finish)
            return
        req.write(chunk(self.fmt.head()))
        self.start_time = common.LOOP.time() + self.knobs['delay']
        if self.knobs['delay'] > 0:
            self.timer = common.LOOP.call_at(self.start_time, self.tick)
        else:
            self.tick()

    def tick(self):
        self.timer = None
        req, knobs = self.req, self.knobs
        try:
            while not self.done:
                i = self.i
                answered = i - self.think
                if answered >= 0 and answered == knobs['fail_after']:
                    req.note += ' dropped_after=%d' % answered
                    req.drop_connection()
                    self.finish()
                    return
                if answered >= 0 and answered == knobs['error_after']:
                    req.write(chunk(self.fmt.error('fake upstream failure mid-stream', False)) + b'0\r\n\r\n')
                    self.finish()
                    return
                if i == self.total:
                    if knobs['hostile']:
                        req.write(chunk(self.fmt.error(None, True)) + b'0\r\n\r\n')
                    else:
                        req.write(chunk(self.fmt.tail()) + b'0\r\n\r\n')
                    self.finish()
                    return
                if knobs['tps'] > 0:
                    due = self.start_time + i / knobs['tps']
                    if due > common.LOOP.time():
                        self.timer = common.LOOP.call_at(due, self.tick)
                        return
                if req.conn.paused:
                    self.waiting = True
                    return
                if i < self.think:
                    frame = self.fmt.reasoning('hmm ', i == 0)
                else:
                    frame = self.fmt.text(token(knobs, self.texts, answered), answered == 0)
                req.write(chunk(frame))
                self.i = i + 1
        except ClientGone:
            self.client_gone()
        except Exception:
            traceback.print_exc()
            req.drop_connection()
            self.finish()


def plan(req, model, knobs, max_tokens, texts):
    """The stream's end: stop, or length when max_tokens cuts it (as real upstreams do)."""
    if texts is not None:
        knobs['tokens'] = len(texts)
    knobs['finish'] = 'stop'
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and 0 < max_tokens < knobs['tokens']:
        knobs['tokens'] = max_tokens
        knobs['finish'] = 'length'
    STATS.add('chat_requests')
    req.note = 'model=%s' % model


def echo(pairs):
    return ['%s: %s\n' % (role, text) for role, text in pairs]


# --- OpenAI Responses -------------------------------------------------------------------

class Responses:
    def __init__(self, knobs, n_in):
        self.knobs, self.n_in = knobs, n_in
        self.id = 'resp_' + uuid.uuid4().hex

    @staticmethod
    def event(kind, value):
        value['type'] = kind
        return b'event: ' + kind.encode() + b'\ndata: ' + dumps(value) + b'\n\n'

    def head(self):
        return self.event('response.created', {'response': {'id': self.id, 'status': 'in_progress'}})

    def reasoning(self, text, first):
        return self.event('response.reasoning_summary_text.delta',
                          {'item_id': 'rs_1', 'output_index': 0, 'summary_index': 0, 'delta': text})

    def text(self, text, first):
        return self.event('response.output_text.delta',
                          {'item_id': 'msg_1', 'output_index': 1, 'content_index': 0, 'delta': text})

    def usage(self):
        out = self.knobs['tokens'] + self.knobs['think']
        return {'input_tokens': self.n_in, 'output_tokens': out, 'total_tokens': self.n_in + out}

    def tail(self):
        if self.knobs['finish'] == 'length':
            return self.event('response.incomplete', {'response': {
                'id': self.id, 'status': 'incomplete', 'incomplete_details': {'reason': 'max_output_tokens'},
                'usage': self.usage()}})
        return self.event('response.completed', {'response': {'id': self.id, 'status': 'completed',
                                                              'usage': self.usage()}})

    def error(self, message, hostile):
        if hostile:
            return b'event: error\ndata: {"type":"error","code":"server_error","message":"' + HOSTILE_TEXT + b'"}\n\n'
        return self.event('response.failed', {'response': {'id': self.id, 'status': 'failed', 'error': {
            'code': 'server_error', 'message': message}}})


def handle_responses(req, match, body):
    request = req.json_body(body)
    model = request.get('model')
    if not isinstance(model, str) or not model:
        raise BadRequest('model is required')
    items = request.get('input')
    if not isinstance(items, list):
        raise BadRequest('input must be a list')
    knobs = parse_knobs(model)
    if knobs['fail']:
        req.send_json(knobs['fail'], {'error': {'message': 'fake upstream failure (%s)' % model,
                                                'type': 'server_error', 'code': 'fake_failure'}})
        return
    pairs = ([('system', request['instructions'])] if isinstance(request.get('instructions'), str) else []) + \
        [(m.get('role'), m.get('content')) for m in items if isinstance(m, dict)]
    texts = echo(pairs) if knobs['echo'] else None
    plan(req, model, knobs, request.get('max_output_tokens'), texts)
    if request.get('stream') is not True:
        raise BadRequest('the fake answers stream: true only')
    FrameStream(req, knobs, Responses(knobs, len(pairs)), texts).start()


# --- Anthropic Messages -------------------------------------------------------------------

class Anthropic:
    def __init__(self, knobs, model, n_in):
        self.knobs, self.model, self.n_in = knobs, model, n_in
        self.block = -1             # the content block open
        self.sent = 0

    @staticmethod
    def event(kind, value):
        value['type'] = kind
        return b'event: ' + kind.encode() + b'\ndata: ' + dumps(value) + b'\n\n'

    def head(self):
        return self.event('message_start', {'message': {
            'id': 'msg_' + uuid.uuid4().hex, 'type': 'message', 'role': 'assistant', 'content': [],
            'model': self.model, 'stop_reason': None, 'stop_sequence': None,
            'usage': {'input_tokens': self.n_in, 'output_tokens': 1}}})

    def open_block(self, kind):
        out = b''
        if self.block >= 0:
            out += self.event('content_block_stop', {'index': self.block})
        self.block += 1
        empty = {'type': 'thinking', 'thinking': ''} if kind == 'thinking' else {'type': 'text', 'text': ''}
        return out + self.event('content_block_start', {'index': self.block, 'content_block': empty})

    def ping(self):
        self.sent += 1
        return self.event('ping', {}) if self.sent % 5 == 0 else b''

    def reasoning(self, text, first):
        return (self.open_block('thinking') if first else b'') + self.ping() + self.event(
            'content_block_delta', {'index': self.block, 'delta': {'type': 'thinking_delta', 'thinking': text}})

    def text(self, text, first):
        return (self.open_block('text') if first else b'') + self.ping() + self.event(
            'content_block_delta', {'index': self.block, 'delta': {'type': 'text_delta', 'text': text}})

    def tail(self):
        out = self.event('content_block_stop', {'index': self.block}) if self.block >= 0 else b''
        return out + self.event('message_delta', {
            'delta': {'stop_reason': 'max_tokens' if self.knobs['finish'] == 'length' else 'end_turn',
                      'stop_sequence': None},
            'usage': {'output_tokens': self.knobs['tokens'] + self.knobs['think']}}) + \
            self.event('message_stop', {})

    def error(self, message, hostile):
        if hostile:
            return b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"' + \
                HOSTILE_TEXT + b'"}}\n\n'
        return self.event('error', {'error': {'type': 'overloaded_error', 'message': message}})


def handle_anthropic(req, match, body):
    if not req.headers.get('anthropic-version'):
        raise BadRequest('anthropic-version header is required')
    if not req.headers.get('x-api-key'):
        req.send_json(401, {'type': 'error', 'error': {'type': 'authentication_error',
                                                       'message': 'x-api-key header is required'}})
        return
    request = req.json_body(body)
    model = request.get('model')
    if not isinstance(model, str) or not model:
        raise BadRequest('model is required')
    messages = request.get('messages')
    if not isinstance(messages, list) or not messages:
        raise BadRequest('messages must be a non-empty list')
    roles = [m.get('role') for m in messages if isinstance(m, dict)]
    if roles[0] != 'user' or any(a == b for a, b in zip(roles, roles[1:])):
        raise BadRequest('messages: roles must alternate between "user" and "assistant", starting with "user"')
    if not isinstance(request.get('max_tokens'), int):
        raise BadRequest('max_tokens: Field required')
    knobs = parse_knobs(model)
    if knobs['fail']:
        req.send_json(knobs['fail'], {'type': 'error', 'error': {
            'type': 'api_error', 'message': 'fake upstream failure (%s)' % model}})
        return
    pairs = ([('system', request['system'])] if isinstance(request.get('system'), str) else []) + \
        [(m.get('role'), m.get('content')) for m in messages if isinstance(m, dict)]
    texts = echo(pairs) if knobs['echo'] else None
    plan(req, model, knobs, request['max_tokens'], texts)
    FrameStream(req, knobs, Anthropic(knobs, model, len(pairs)), texts).start()


# --- Gemini -------------------------------------------------------------------------------

class Gemini:
    def __init__(self, knobs, n_in):
        self.knobs, self.n_in = knobs, n_in

    @staticmethod
    def data(value):
        return b'data: ' + dumps(value) + b'\r\n\r\n'

    def head(self):
        return b''

    def reasoning(self, text, first):
        return self.data({'candidates': [{'content': {'parts': [{'text': text, 'thought': True}], 'role': 'model'},
                                          'index': 0}]})

    def text(self, text, first):
        return self.data({'candidates': [{'content': {'parts': [{'text': text}], 'role': 'model'}, 'index': 0}],
                          'usageMetadata': {'promptTokenCount': self.n_in}})

    def tail(self):
        return self.data({'candidates': [{'content': {'parts': [{'text': ''}], 'role': 'model'},
                                          'finishReason': 'MAX_TOKENS' if self.knobs['finish'] == 'length'
                                          else 'STOP', 'index': 0}],
                          'usageMetadata': {'promptTokenCount': self.n_in,
                                            'candidatesTokenCount': self.knobs['tokens'],
                                            'thoughtsTokenCount': self.knobs['think'],
                                            'totalTokenCount': self.n_in + self.knobs['tokens'] +
                                            self.knobs['think']}})

    def error(self, message, hostile):
        if hostile:
            return b'data: {"error":{"code":500,"message":"' + HOSTILE_TEXT + b'","status":"INTERNAL"}}\r\n\r\n'
        return self.data({'error': {'code': 503, 'message': message, 'status': 'UNAVAILABLE'}})


def handle_gemini(req, match, body):
    model = urllib.parse.unquote(match.group(1))
    if 'alt=sse' not in req.path.partition('?')[2].split('&'):
        raise BadRequest('the fake streams with alt=sse only')
    if not req.headers.get('x-goog-api-key'):
        req.send_json(403, [{'error': {'code': 403, 'message': 'Method doesn\'t allow unregistered callers. '
                                       'Please use API Key.', 'status': 'PERMISSION_DENIED'}}])
        return
    request = req.json_body(body)
    contents = request.get('contents')
    if not isinstance(contents, list) or not contents:
        raise BadRequest('contents must be a non-empty list')
    knobs = parse_knobs(model)
    if knobs['fail']:
        req.send_json(knobs['fail'], [{'error': {'code': knobs['fail'], 'message': 'fake upstream failure (%s)'
                                                 % model, 'status': 'INTERNAL'}}])
        return
    def text_of(parts):
        return ''.join(p.get('text', '') for p in parts if isinstance(p, dict)) if isinstance(parts, list) else ''
    system = request.get('systemInstruction')
    pairs = ([('system', text_of(system.get('parts')))] if isinstance(system, dict) else []) + \
        [('assistant' if c.get('role') == 'model' else c.get('role'), text_of(c.get('parts')))
         for c in contents if isinstance(c, dict)]
    texts = echo(pairs) if knobs['echo'] else None
    config = request.get('generationConfig') if isinstance(request.get('generationConfig'), dict) else {}
    plan(req, model, knobs, config.get('maxOutputTokens'), texts)
    FrameStream(req, knobs, Gemini(knobs, len(pairs)), texts).start()


# --- models lists ---------------------------------------------------------------------------

def handle_models(req, match, body):
    names = ['fake', 'fake-responses', 'fake-claude', 'fake-gemini']
    if req.headers.get('anthropic-version') and not req.headers.get('x-api-key'):
        req.send_json(401, {'type': 'error', 'error': {'type': 'authentication_error',
                                                       'message': 'x-api-key header is required'}})
        return
    if req.path.startswith('/v1beta/') and not req.headers.get('x-goog-api-key'):
        req.send_json(403, [{'error': {'code': 403, 'message': 'Method doesn\'t allow unregistered callers.',
                                       'status': 'PERMISSION_DENIED'}}])
        return
    if req.path.startswith('/v1beta/'):
        req.send_json(200, {'models': [{'name': 'models/' + n} for n in names]})
    else:
        req.send_json(200, {'object': 'list', 'data': [{'id': n, 'object': 'model'} for n in names]})


ROUTES = [
    ('POST', re.compile(r'(?:/v1)?/responses'), handle_responses),
    ('POST', re.compile(r'(?:/v1)?/v1/messages'), handle_anthropic),
    ('POST', re.compile(r'(?:/v1)?/v1beta/models/([^/:]+):streamGenerateContent'), handle_gemini),
    ('GET', re.compile(r'(?:/v1)?/models|/v1beta/models'), handle_models),
]

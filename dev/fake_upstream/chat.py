"""
chat: the OpenAI chat completions protocol (POST /v1/chat/completions), with
"stream": true as text/event-stream chunks and "data: [DONE]".
"""

import json
import re
import time
import traceback
import uuid

import common
from common import STATS, BadRequest, ClientGone, parse_knobs, hostile_json

def token_text(knobs):
    if knobs['stamp']:
        return 'tok@T%019d ' % time.time_ns()
    return 'tok '


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
    options = request.get('stream_options')
    knobs['usage'] = isinstance(options, dict) and options.get('include_usage') is True
    knobs['n_in'] = len(request['messages'])
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


class ChatStream(common.PacedStream):
    """The streamed answer: one chunk per token, paced at tps from the first
    token (start + i/tps, so a late token does not delay the next ones), then
    stop and [DONE]. Driven by the event loop's timers, one call per token; the
    chunks are the bytes json.dumps(chunk, separators=(',', ':')) gives, built
    from a prefix and a suffix computed once."""

    def __init__(self, req, model, knobs):
        self.req = req
        self.knobs = knobs
        self.tokens = knobs['tokens']
        self.think = knobs['think']
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
        self.reasoning_prefix = (head + '"reasoning_content":').encode()
        self.suffix = b'},"finish_reason":null}]}\n\n'
        usage = ''
        if knobs.get('usage'):       # stream_options.include_usage: a last chunk without choices
            out = knobs['tokens'] + knobs['think']
            usage = head.split('"choices"')[0] + '"choices":[],"usage":{"prompt_tokens":%d,' \
                '"completion_tokens":%d,"total_tokens":%d}}' % (knobs['n_in'], out, knobs['n_in'] + out)
        self.tail = self.event(head + '},"finish_reason":%s}]}' % json.dumps(knobs['finish_reason'])) + \
            (self.event(usage) if usage else b'') + self.event('[DONE]') + b'0\r\n\r\n'
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
        self.start_time = common.LOOP.time() + self.knobs['delay']
        if self.knobs['delay'] > 0:
            self.timer = common.LOOP.call_at(self.start_time, self.tick)
        else:
            self.tick()

    def tick(self):
        self.timer = None
        req = self.req
        try:
            while not self.done:
                if self.i < self.think:        # reasoning first, paced as tokens
                    if self.tps > 0:
                        due = self.start_time + self.i / self.tps
                        if due > common.LOOP.time():
                            self.timer = common.LOOP.call_at(due, self.tick)
                            return
                    payload = b'data: %s"hmm "%s' % (self.reasoning_prefix, self.suffix)
                    req.write(b'%x\r\n%s\r\n' % (len(payload), payload))
                    self.i += 1
                    if self.i == self.think:
                        self.start_time += self.think / self.tps if self.tps > 0 else 0
                        self.i = 0
                        self.think = 0
                    continue
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
                    if due > common.LOOP.time():
                        self.timer = common.LOOP.call_at(due, self.tick)
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


# ---------------------------------------------------------------------------
# Image (Midjourney-proxy) and video (OpenAI-style) tasks
# ---------------------------------------------------------------------------


ROUTES = [
    ('POST', re.compile(r'/v1/chat/completions'), handle_chat_completions),
]

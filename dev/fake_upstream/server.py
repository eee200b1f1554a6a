"""
server: the fake upstream's HTTP/1.1 server on one asyncio event loop, its
routes (each protocol module's ROUTES and its own), and main().
"""

import asyncio
import email.utils
import html
import json
import re
import signal
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler

import chat
import common
import protocols
import tasks
from common import STATS, BadRequest, ClientGone, MAX_BODY, HANG_LIMIT_S


def handle_healthz(req, match, body):
    req.send_json(200, {'status': 'ok'})


def handle_stats(req, match, body):
    req.send_json(200, STATS.snapshot())



# (method, path regex, handler)
ROUTES = [
    ('GET', re.compile(r'/healthz'), handle_healthz),
    ('GET', re.compile(r'/stats'), handle_stats),
] + chat.ROUTES + protocols.ROUTES + tasks.ROUTES


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
    # PORT, or ADDR:PORT (dev/cluster runs the fake on a host of its own)
    addr, _, port = argv[0].rpartition(':') if len(argv) == 1 else ('', '', '')
    if not port.isdigit():
        sys.stderr.write('usage: python3 dev/fake_upstream [ADDR:]PORT\n')
        return 2
    addr = addr or '127.0.0.1'
    port = int(port)
    LOOP = common.LOOP = asyncio.new_event_loop()
    asyncio.set_event_loop(LOOP)
    server = LOOP.run_until_complete(LOOP.create_server(
        Conn, addr, port, backlog=1024, reuse_address=True))
    for signum in (signal.SIGTERM, signal.SIGINT):
        LOOP.add_signal_handler(signum, LOOP.stop)
    sys.stderr.write('info fake upstream listening addr=%s:%d\n' % (addr, port))
    sys.stderr.flush()
    LOOP.run_forever()
    server.close()
    sys.stderr.write('info fake upstream stopped\n')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))


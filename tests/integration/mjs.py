"""
mjs: the integration tests' library — an HTTP client with a cookie jar per
"browser", a real SSE client over a raw socket, and a psql helper.

Everything talks to an already running stack (dev/up --detach): MJS_STATE_DIR
names its state directory, whose `env` file holds MJS_URL (nginx) and MJS_DSN
(libpq conninfo). Python 3 standard library only.

Invariants the tests rely on:
- Every wait is a loop on a condition with a deadline; nothing sleeps for
  correctness. A wait that times out raises AssertionError saying what it saw.
- Every socket and thread this module opens is closed by close() / the
  context manager, so a failing test leaks nothing into the next one.
- SQL values are never formatted into SQL text: psql() passes them with
  `-v pN=value` and the statement quotes them as :'pN'.
"""

import codecs
import http.client
import json
import os
import secrets
import shlex
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid

# ---------------------------------------------------------------------------
# The stack's coordinates
# ---------------------------------------------------------------------------

_env_cache = None


def parse_env_file(text):
    """Parses shell-style `KEY=value` / `KEY='value'` lines; ignores comments and other lines."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        if line.startswith('export '):
            line = line[len('export '):].lstrip()
        key, sep, rest = line.partition('=')
        if not sep or not key.replace('_', 'a').isalnum():
            continue
        try:
            words = shlex.split(rest, comments=True, posix=True)
        except ValueError:
            words = [rest]
        out[key] = ' '.join(words)
    return out


def env():
    """The stack's env file as a dict (MJS_URL, MJS_DSN, ...). Raises RuntimeError when absent."""
    global _env_cache
    if _env_cache is None:
        state = os.environ.get('MJS_STATE_DIR')
        if not state:
            raise RuntimeError('MJS_STATE_DIR is not set (start a stack with dev/up --detach)')
        path = os.path.join(state, 'env')
        try:
            with open(path, encoding='utf-8') as f:
                values = parse_env_file(f.read())
        except OSError as e:
            raise RuntimeError('cannot read %s: %s' % (path, e.strerror))
        for key in ('MJS_URL', 'MJS_DSN'):
            if not values.get(key):
                raise RuntimeError('%s has no %s' % (path, key))
        _env_cache = values
    return _env_cache


def base_url():
    return env()['MJS_URL'].rstrip('/')


def origin():
    """The public origin the stack is configured with (the Origin a browser on it sends)."""
    return base_url()


def _url_parts():
    u = urllib.parse.urlsplit(base_url())
    if u.scheme not in ('http', 'https'):
        raise RuntimeError('MJS_URL must be http or https: %r' % base_url())
    port = u.port or (443 if u.scheme == 'https' else 80)
    return u.scheme, u.hostname, port, u.netloc


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def unique_username(prefix='u_'):
    """A username no other test uses: u_ and 12 hex digits."""
    return prefix + secrets.token_hex(6)


def unique_password():
    return 'pw-' + secrets.token_urlsafe(12)


def wait_until(predicate, timeout, what='condition', interval=0.02):
    """Polls predicate() until it returns a true value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError('timed out after %.1fs waiting for %s' % (timeout, what))
        time.sleep(interval)


def is_uuid(s):
    if not isinstance(s, str) or len(s) != 36:
        return False
    try:
        uuid.UUID(s)
        return True
    except ValueError:
        return False


def timeout(seconds):
    """Decorator: the test's deadline in seconds (the runner's default is 60)."""
    def mark(fn):
        fn.timeout = seconds
        return fn
    return mark


def short(value, limit=300):
    s = value if isinstance(value, str) else repr(value)
    return s if len(s) <= limit else s[:limit] + '...(%d chars)' % len(s)


# ---------------------------------------------------------------------------
# HTTP client
# ---------------------------------------------------------------------------

DEFAULT = object()   # "send the usual value" for content_type / origin


class Response:
    """One HTTP response. Unpacks as (status, headers, json-or-None)."""

    def __init__(self, method, path, status, headers, body):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers          # http.client.HTTPMessage: case-insensitive get/get_all
        self.body = body                # bytes
        self.json = None
        if body:
            try:
                self.json = json.loads(body.decode('utf-8'))
            except (UnicodeDecodeError, ValueError):
                self.json = None

    def __iter__(self):
        return iter((self.status, self.headers, self.json))

    def __repr__(self):
        return '%s %s -> %d %s' % (self.method, self.path, self.status,
                                   short(self.body.decode('utf-8', 'replace')))

    def expect(self, status):
        """Asserts the status; returns the parsed JSON body."""
        assert self.status == status, 'expected %d, got %r' % (status, self)
        return self.json

    def error_code(self):
        j = self.json
        if isinstance(j, dict) and isinstance(j.get('error'), dict):
            return j['error'].get('code')
        return None


def assert_error(resp, status, code):
    """Asserts an error response: the status, a JSON content type and {"error":{"code","message"}}."""
    assert resp.status == status, 'expected %d %s, got %r' % (status, code, resp)
    ctype = resp.headers.get('Content-Type', '')
    assert ctype.split(';')[0].strip().lower() == 'application/json', \
        'expected a JSON error body, got Content-Type %r: %r' % (ctype, resp)
    j = resp.json
    assert isinstance(j, dict) and isinstance(j.get('error'), dict), \
        'expected {"error":{...}}, got %r' % resp
    assert j['error'].get('code') == code, 'expected code %r, got %r' % (code, resp)
    msg = j['error'].get('message')
    assert isinstance(msg, str) and msg, 'expected a non-empty error message, got %r' % resp


def parse_set_cookie(header):
    """'name=value; Attr; K=V' -> (name, value, {attr-lower: value-or-True})."""
    parts = [p.strip() for p in header.split(';')]
    name, _, value = parts[0].partition('=')
    attrs = {}
    for p in parts[1:]:
        if not p:
            continue
        k, sep, v = p.partition('=')
        attrs[k.strip().lower()] = v.strip() if sep else True
    return name.strip(), value.strip(), attrs


class Client:
    """
    One "browser": a keep-alive connection to nginx and a cookie jar.
    Sends Content-Type: application/json on requests other than GET/HEAD and
    Origin: <public origin> on every request, unless told otherwise.
    """

    def __init__(self, timeout=30):
        self.timeout = timeout
        self.cookies = {}
        self.set_cookies = []      # every Set-Cookie header received, in order
        self.user = None           # the user object after signup()/login()
        self.username = None
        self.password = None
        self._conn = None
        self._conn_used = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self):
        scheme, host, port, _ = _url_parts()
        if scheme == 'https':
            ctx = ssl._create_unverified_context()
            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=ctx)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def cookie_header(self):
        return '; '.join('%s=%s' % kv for kv in self.cookies.items())

    @property
    def session(self):
        """The session token, from mjs_session or (cookie_secure) __Host-mjs_session."""
        return self.cookies.get('mjs_session') or self.cookies.get('__Host-mjs_session')

    def _store_cookies(self, headers):
        for h in headers.get_all('Set-Cookie') or []:
            self.set_cookies.append(h)
            name, value, attrs = parse_set_cookie(h)
            expired = value == '' or attrs.get('max-age') in ('0',) or \
                (isinstance(attrs.get('max-age'), str) and attrs['max-age'].startswith('-'))
            if expired:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def request(self, method, path, json_body=None, *, raw=None, headers=None,
                content_type=DEFAULT, origin_header=DEFAULT, cookie=DEFAULT):
        """
        Sends one request and returns a Response. json_body is serialized (UTF-8,
        non-ASCII kept); raw sends bytes as they are. content_type / origin_header /
        cookie: DEFAULT for the usual value, None to omit, or a string to send.
        """
        body = raw
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False).encode('utf-8')
        hdrs = {}
        if content_type is DEFAULT:
            if method not in ('GET', 'HEAD'):
                hdrs['Content-Type'] = 'application/json'
        elif content_type is not None:
            hdrs['Content-Type'] = content_type
        if origin_header is DEFAULT:
            hdrs['Origin'] = origin()
        elif origin_header is not None:
            hdrs['Origin'] = origin_header
        if cookie is DEFAULT:
            if self.cookies:
                hdrs['Cookie'] = self.cookie_header()
        elif cookie is not None:
            hdrs['Cookie'] = cookie
        if body is None and method in ('POST', 'PUT', 'PATCH'):
            body = b''
        if headers:
            hdrs.update(headers)

        for attempt in (0, 1):
            if self._conn is None:
                self._conn = self._connect()
                self._conn_used = False
            reused = self._conn_used
            conn = self._conn
            send_error = None
            try:
                try:
                    conn.request(method, path, body=body, headers=hdrs)
                except (BrokenPipeError, ConnectionResetError) as e:
                    # The server may answer (413) before reading the whole body.
                    if reused:
                        raise
                    send_error = e
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError, http.client.BadStatusLine) as e:
                self.close()
                if reused and attempt == 0:
                    continue        # a stale keep-alive connection: retry once on a fresh one
                if send_error is not None:
                    raise send_error
                raise AssertionError('%s %s: connection failed: %r' % (method, path, e))
            self._conn_used = True
            if resp.will_close:
                self.close()
            self._store_cookies(resp.headers)
            return Response(method, path, resp.status, resp.headers, data)

    def get(self, path, **kw):
        return self.request('GET', path, **kw)

    def post(self, path, json_body=None, **kw):
        return self.request('POST', path, json_body, **kw)

    def patch(self, path, json_body=None, **kw):
        return self.request('PATCH', path, json_body, **kw)

    def put(self, path, json_body=None, **kw):
        return self.request('PUT', path, json_body, **kw)

    def delete(self, path, **kw):
        return self.request('DELETE', path, **kw)

    # --- accounts -----------------------------------------------------------

    def register(self, username=None, password=None, **kw):
        self.username = username if username is not None else unique_username()
        self.password = password if password is not None else unique_password()
        return self.post('/api/auth/register', {'username': self.username, 'password': self.password}, **kw)

    def login(self, username=None, password=None, **kw):
        username = self.username if username is None else username
        password = self.password if password is None else password
        r = self.post('/api/auth/login', {'username': username, 'password': password}, **kw)
        if r.status == 200:
            self.username, self.password, self.user = username, password, r.json
        return r

    def signup(self):
        """Registers a fresh user and logs in; returns the user object."""
        self.register().expect(201)
        self.login().expect(200)
        assert self.session, 'login set no mjs_session cookie: %r' % self.set_cookies
        return self.user

    def another_device(self):
        """A new Client logged in (its own session) as the same user."""
        c = Client(self.timeout)
        c.login(self.username, self.password).expect(200)
        return c

    def same_session(self):
        """A new Client (another tab) sharing this one's cookies."""
        c = Client(self.timeout)
        c.cookies = dict(self.cookies)
        c.username, c.password, c.user = self.username, self.password, self.user
        return c

    @property
    def user_id(self):
        return self.user['id']

    def me(self):
        return self.get('/api/me').expect(200)

    # --- conversations --------------------------------------------------------

    def create_conversation(self, title=None):
        body = {} if title is None else {'title': title}
        return self.post('/api/conversations', body).expect(201)

    def rename_conversation(self, cid, title):
        return self.patch('/api/conversations/' + cid, {'title': title}).expect(200)

    def delete_conversation(self, cid):
        self.delete('/api/conversations/' + cid).expect(204)
        return {'id': cid}


# ---------------------------------------------------------------------------
# text/event-stream: chunked decoding and the SSE parser (pure, byte-fed)
# ---------------------------------------------------------------------------

class ChunkedDecoder:
    """
    Decodes an HTTP/1.1 chunked body fed in arbitrary pieces. feed() returns
    the payload bytes decoded so far; .done is set after the last chunk and
    its trailers. Raises ValueError on a malformed stream.
    """

    def __init__(self):
        self._buf = b''
        self._state = 'size'       # size | data | data_crlf | trailer | done
        self._left = 0
        self.done = False

    def feed(self, data):
        self._buf += data
        out = []
        while True:
            if self._state == 'size':
                i = self._buf.find(b'\r\n')
                if i < 0:
                    if len(self._buf) > 4096:
                        raise ValueError('chunk size line too long')
                    break
                line = self._buf[:i].split(b';', 1)[0].strip()
                self._buf = self._buf[i + 2:]
                if not line or any(c not in b'0123456789abcdefABCDEF' for c in line):
                    raise ValueError('bad chunk size line %r' % line)
                self._left = int(line, 16)
                self._state = 'data' if self._left else 'trailer'
            elif self._state == 'data':
                if not self._buf:
                    break
                take = self._buf[:self._left]
                out.append(take)
                self._buf = self._buf[len(take):]
                self._left -= len(take)
                if self._left == 0:
                    self._state = 'data_crlf'
            elif self._state == 'data_crlf':
                if len(self._buf) < 2:
                    break
                if self._buf[:2] != b'\r\n':
                    raise ValueError('chunk not followed by CRLF')
                self._buf = self._buf[2:]
                self._state = 'size'
            elif self._state == 'trailer':
                i = self._buf.find(b'\r\n')
                if i < 0:
                    break
                line = self._buf[:i]
                self._buf = self._buf[i + 2:]
                if line == b'':
                    self._state = 'done'
                    self.done = True
            else:
                break
        return b''.join(out)


class Event:
    """One dispatched SSE event: id (int when numeric), event type, data text and its JSON."""

    __slots__ = ('id', 'event', 'data', 'json', 'received_at')

    def __init__(self, id, event, data):
        self.id = int(id) if id.isdigit() else id
        self.event = event
        self.data = data
        try:
            self.json = json.loads(data)
        except ValueError:
            self.json = None
        self.received_at = time.monotonic()

    def __repr__(self):
        return 'Event(id=%r, event=%r, data=%s)' % (self.id, self.event, short(self.data, 160))


class SSEParser:
    """
    The text/event-stream parser of the HTML standard (9.2.6), fed bytes in
    arbitrary pieces: UTF-8 decoding across splits, a leading BOM, CRLF / LF /
    CR line ends (a CR at the end of one piece and LF at the start of the next
    are one line end), comments, field "name: value" with one optional space,
    multi-line data, the id carried over to later events, retry.

    feed() returns the events dispatched by this piece. Also kept:
    last_event_id, retry (ms or None), comments (count), marker_ids (the ids of
    blocks that carried an id but no data, such as the stream's start mark).
    """

    def __init__(self):
        self._decoder = codecs.getincrementaldecoder('utf-8')(errors='replace')
        self._text = ''
        self._started = False
        self._skip_lf = False
        self._data = []
        self._event = ''
        self._block_id = None      # the id field seen in the current block, if any
        self.last_event_id = ''
        self.retry = None
        self.comments = 0
        self.marker_ids = []

    def feed(self, data, final=False):
        text = self._decoder.decode(data, final)
        if not self._started and text:
            self._started = True
            if text.startswith('\ufeff'):
                text = text[1:]
        if self._skip_lf and text:
            if text.startswith('\n'):
                text = text[1:]
            self._skip_lf = False
        self._text += text
        events = []
        start = 0
        buf = self._text
        n = len(buf)
        while True:
            i_lf = buf.find('\n', start)
            i_cr = buf.find('\r', start)
            if i_lf < 0 and i_cr < 0:
                break
            if i_cr < 0 or (0 <= i_lf < i_cr):
                end, nxt = i_lf, i_lf + 1
            else:
                end = i_cr
                if i_cr + 1 < n:
                    nxt = i_cr + 2 if buf[i_cr + 1] == '\n' else i_cr + 1
                else:
                    nxt = i_cr + 1
                    self._skip_lf = True    # the LF may come in the next piece
            ev = self._line(buf[start:end])
            if ev is not None:
                events.append(ev)
            start = nxt
        self._text = buf[start:]
        return events

    def _line(self, line):
        if line == '':
            return self._dispatch()
        if line.startswith(':'):
            self.comments += 1
            return None
        name, sep, value = line.partition(':')
        if sep and value.startswith(' '):
            value = value[1:]
        if name == 'data':
            self._data.append(value)
        elif name == 'event':
            self._event = value
        elif name == 'id':
            if '\0' not in value:
                self.last_event_id = value
                self._block_id = value
        elif name == 'retry':
            if value.isdigit() and value.isascii():
                self.retry = int(value)
        return None

    def _dispatch(self):
        block_id, self._block_id = self._block_id, None
        if not self._data:
            self._event = ''
            if block_id is not None:
                self.marker_ids.append(int(block_id) if block_id.isdigit() else block_id)
            return None
        ev = Event(self.last_event_id, self._event or 'message', '\n'.join(self._data))
        self._data = []
        self._event = ''
        return ev


# ---------------------------------------------------------------------------
# The SSE client
# ---------------------------------------------------------------------------

def _parse_head(head):
    lines = head.decode('iso-8859-1').split('\r\n')
    parts = lines[0].split(' ', 2)
    if len(parts) < 2 or not parts[0].startswith('HTTP/') or not parts[1].isdigit():
        raise ValueError('bad status line %r' % lines[0])
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(':')
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return parts[0], int(parts[1]), headers


class SSE:
    """
    GET /api/events over a raw socket, parsed in a background thread.

    SSE(client) opens the stream with the client's cookies (cookie= overrides),
    last_event_id= sends a Last-Event-ID header, query_last_event_id= sends
    ?last_event_id=. It returns once the response head has arrived (.status,
    .headers); for 200 it also waits for the `retry` field and, without a
    last event id, for the bare `id: N` start mark (.start_id): from then on,
    every event committed is delivered to this stream.

    read=False opens the connection and sends the request but reads nothing
    (a stalled tab; rcvbuf= shrinks its receive buffer); start() reads later.
    """

    def __init__(self, client=None, *, last_event_id=None, query_last_event_id=None,
                 cookie=DEFAULT, read=True, rcvbuf=None, timeout=20, wait_start=True,
                 extra_headers=None):
        self.status = None
        self.headers = {}
        self.body = b''                 # the body of a non-200 response
        self.json = None
        self.start_id = None
        self.bytes_received = 0
        self.closed = False             # the server ended the response or the connection
        self.close_reason = None
        self._events = []
        self._cond = threading.Condition()
        self._parser = SSEParser()
        self._stop = False
        self._thread = None
        self._head_buf = b''

        scheme, host, port, netloc = _url_parts()
        path = '/api/events'
        if query_last_event_id is not None:
            path += '?last_event_id=' + urllib.parse.quote(str(query_last_event_id))
        self.path = path
        lines = ['GET %s HTTP/1.1' % path, 'Host: %s' % netloc, 'Accept: text/event-stream',
                 'Cache-Control: no-cache', 'User-Agent: mjs-integration-tests']
        if cookie is DEFAULT:
            if client is not None and client.cookies:
                lines.append('Cookie: ' + client.cookie_header())
        elif cookie is not None:
            lines.append('Cookie: ' + cookie)
        if last_event_id is not None:
            lines.append('Last-Event-ID: %s' % last_event_id)
        for k, v in (extra_headers or {}).items():
            lines.append('%s: %s' % (k, v))
        request = ('\r\n'.join(lines) + '\r\n\r\n').encode('iso-8859-1')

        sock = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect((host, port))
            if scheme == 'https':
                sock = ssl._create_unverified_context().wrap_socket(sock, server_hostname=host)
            sock.sendall(request)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._timeout = timeout
        if read:
            self.start()
            if wait_start:
                self.wait_open(timeout, want_start=last_event_id is None and query_last_event_id is None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return '<SSE %s status=%s events=%d closed=%s>' % (self.path, self.status, len(self._events), self.closed)

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name='sse-reader', daemon=True)
            self._thread.start()

    def wait_open(self, timeout, want_start=True):
        """Waits for the head; for a 200, the retry field and (want_start) the start mark."""
        def ready():
            if self.status is None:
                return self.closed
            if self.status != 200:
                return self.closed
            if self._parser.retry is None:
                return self.closed
            return not want_start or self.start_id is not None or self.closed
        with self._cond:
            if not self._cond.wait_for(ready, timeout):
                raise AssertionError('SSE %s: not open after %.1fs (status=%s, retry=%s, start=%s)'
                                     % (self.path, timeout, self.status, self._parser.retry, self.start_id))
        if self.status == 200 and (self._parser.retry is None or (want_start and self.start_id is None)):
            raise AssertionError('SSE %s: closed while opening: %s' % (self.path, self.close_reason))
        if self.status is None:
            raise AssertionError('SSE %s: no response: %s' % (self.path, self.close_reason))

    def _run(self):
        sock = self._sock
        sock.settimeout(None)
        decoder = None
        remaining = None            # Content-Length of a non-chunked body
        reason = 'server closed the connection'
        try:
            while not self._stop:
                data = sock.recv(65536)
                if not data:
                    if self.status is None:
                        reason = 'connection closed before a response'
                    break
                self.bytes_received += len(data)
                if self.status is None:
                    self._head_buf += data
                    i = self._head_buf.find(b'\r\n\r\n')
                    if i < 0:
                        if len(self._head_buf) > 65536:
                            raise ValueError('response head too long')
                        continue
                    head, data = self._head_buf[:i], self._head_buf[i + 4:]
                    self._head_buf = b''
                    version, status, headers = _parse_head(head)
                    te = ','.join(headers.get('transfer-encoding', [])).lower()
                    if 'chunked' in te:
                        decoder = ChunkedDecoder()
                    elif 'content-length' in headers:
                        remaining = int(headers['content-length'][0])
                    with self._cond:
                        self.status, self.headers = status, headers
                        self._cond.notify_all()
                payload = decoder.feed(data) if decoder else data
                if remaining is not None:
                    payload = payload[:remaining]
                    remaining -= len(payload)
                self._deliver(payload)
                if (decoder and decoder.done) or remaining == 0:
                    reason = 'the response ended'
                    break
        except OSError as e:
            reason = 'socket error: %s' % e if not self._stop else 'closed by the test'
        except ValueError as e:
            reason = 'protocol error: %s' % e
        finally:
            with self._cond:
                if self.status is not None and self.status != 200:
                    try:
                        self.json = json.loads(self.body.decode('utf-8'))
                    except ValueError:
                        self.json = None
                if self._stop:
                    reason = 'closed by the test'
                self.closed = True
                self.close_reason = reason
                self._cond.notify_all()

    def _deliver(self, payload):
        if not payload:
            return
        if self.status != 200:
            self.body += payload
            return
        events = self._parser.feed(payload)
        with self._cond:
            if self.start_id is None and self._parser.marker_ids:
                self.start_id = self._parser.marker_ids[0]
            self._events.extend(events)
            self._cond.notify_all()

    # --- what arrived -----------------------------------------------------------

    @property
    def retry(self):
        return self._parser.retry

    @property
    def comments(self):
        return self._parser.comments

    @property
    def marker_ids(self):
        with self._cond:
            return list(self._parser.marker_ids)

    def events(self):
        with self._cond:
            return list(self._events)

    def ids(self):
        return [e.id for e in self.events()]

    def wait_for(self, predicate, timeout=20):
        """Waits for an event satisfying predicate(event); returns it."""
        found = []

        def check():
            for e in self._events:
                if predicate(e):
                    found.append(e)
                    return True
            return self.closed
        with self._cond:
            self._cond.wait_for(check, timeout)
            if found:
                return found[0]
            raise AssertionError('SSE %s: no matching event after %.1fs (%s); got %d events, last %r'
                                 % (self.path, timeout, self._state(), len(self._events),
                                    self._events[-1:]))

    def wait_count(self, n, timeout=20):
        """Waits until at least n events arrived; returns the first n."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._events) >= n or self.closed, timeout)
            if len(self._events) >= n:
                return list(self._events[:n])
            raise AssertionError('SSE %s: %d of %d events after %.1fs (%s); last %r'
                                 % (self.path, len(self._events), n, timeout, self._state(),
                                    self._events[-1:]))

    def wait_count_or_closed(self, n, timeout=20):
        """Waits until n events arrived or the stream ended; returns the events so far."""
        with self._cond:
            self._cond.wait_for(lambda: len(self._events) >= n or self.closed, timeout)
            return list(self._events)

    def wait_id(self, seq, timeout=20):
        """Waits for the event with id seq; returns it."""
        return self.wait_for(lambda e: e.id == seq, timeout)

    def wait_closed(self, timeout=20):
        """Waits for the server to end the stream; returns True if it did."""
        with self._cond:
            return self._cond.wait_for(lambda: self.closed, timeout)

    def _state(self):
        return 'closed: %s' % self.close_reason if self.closed else 'open'

    def close(self):
        self._stop = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(10)
        self._sock.close()


def assert_events_match(received, expected, first_seq, label='stream'):
    """
    received: Events; expected: (type, data) pairs. Asserts ids first_seq,
    first_seq+1, ... (consecutive) and equal types and parsed data.
    """
    assert len(received) == len(expected), '%s: %d events, expected %d: %r' % (
        label, len(received), len(expected), received)
    for i, (ev, (etype, edata)) in enumerate(zip(received, expected)):
        assert ev.id == first_seq + i, '%s: event #%d has id %r, expected %d (ids %r)' % (
            label, i, ev.id, first_seq + i, [e.id for e in received])
        assert ev.event == etype, '%s: event id %d is %r, expected %r' % (label, ev.id, ev.event, etype)
        assert ev.json == edata, '%s: event id %d data %s, expected %s' % (
            label, ev.id, short(ev.data), short(json.dumps(edata)))


# ---------------------------------------------------------------------------
# psql
# ---------------------------------------------------------------------------

def psql(sql, *params, timeout=30):
    """
    Runs sql with psql against MJS_DSN and returns the rows as lists of
    strings (NULL as None). Parameters are passed as psql variables p1, p2, ...:
    write them as :'p1' (a literal) in the SQL. The script is read from stdin
    so psql interpolates the variables; ON_ERROR_STOP makes an error fail.
    """
    args = ['psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
            '-F', '\x1f', '-R', '\x1e', '-P', 'null=\x1d', '-d', env()['MJS_DSN']]
    for i, p in enumerate(params, 1):
        value = p if isinstance(p, str) else json.dumps(p) if isinstance(p, (dict, list)) else str(p)
        if '\0' in value:
            raise ValueError('psql parameters cannot hold NUL')
        args += ['-v', 'p%d=%s' % (i, value)]
    proc = subprocess.run(args, input=sql.encode('utf-8'), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError('psql failed (%d): %s\nSQL: %s' % (
            proc.returncode, proc.stderr.decode('utf-8', 'replace').strip(), sql.strip()))
    out = proc.stdout.decode('utf-8')
    if out.endswith('\n'):
        out = out[:-1]
    rows = []
    for rec in out.split('\x1e'):
        if rec.startswith('\n'):
            rec = rec[1:]
        if rec == '':
            continue
        rows.append([None if f == '\x1d' else f for f in rec.split('\x1f')])
    return rows


def psql_value(sql, *params):
    """The single value of a one-row, one-column query (None for no row / NULL)."""
    rows = psql(sql, *params)
    if not rows:
        return None
    assert len(rows) == 1 and len(rows[0]) == 1, 'expected one value, got %r' % rows
    return rows[0][0]


def psql_json(sql, *params):
    """Parses the single value of a query that returns one JSON text."""
    v = psql_value(sql, *params)
    return None if v is None else json.loads(v)


def db_events(user_id, after=0):
    """The user's events after seq `after`, as [{"seq","type","data"}] in seq order."""
    return psql_json("""
        SELECT coalesce(json_agg(json_build_object('seq', seq, 'type', type, 'data', data) ORDER BY seq), '[]')
        FROM mjs.events WHERE user_id = :'p1' AND seq > :'p2'::bigint""", user_id, after)


def db_event_seq(user_id):
    v = psql_value("SELECT event_seq FROM mjs.users WHERE id = :'p1'", user_id)
    return None if v is None else int(v)


def snapshot(*user_ids):
    """
    What a rejected request must not change: the number of users and sessions,
    and for each given user its row, conversations and events.
    """
    snap = {'users': psql_value('SELECT count(*) FROM mjs.users'),
            'sessions': psql_value('SELECT count(*) FROM mjs.sessions')}
    for uid in user_ids:
        snap[uid] = psql_json("""
            SELECT json_build_object(
              'user', (SELECT json_build_object('username', username, 'password_hash', password_hash,
                         'event_seq', event_seq, 'disabled', disabled)
                       FROM mjs.users WHERE id = :'p1'),
              'conversations', (SELECT coalesce(json_agg(json_build_object('id', id, 'title', title,
                         'created_at', created_at, 'updated_at', updated_at) ORDER BY id), '[]')
                       FROM mjs.conversations WHERE user_id = :'p1'),
              'events', (SELECT coalesce(json_agg(json_build_object('seq', seq, 'type', type,
                         'data', data::text) ORDER BY seq), '[]')
                       FROM mjs.events WHERE user_id = :'p1'))""", uid)
    return snap


class unchanged:
    """Context manager: asserts snapshot(*user_ids) is the same after the block as before."""

    def __init__(self, *user_ids, what='the database'):
        self.user_ids = user_ids
        self.what = what

    def __enter__(self):
        self.before = snapshot(*self.user_ids)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            return False
        after = snapshot(*self.user_ids)
        if after != self.before:
            diff = {k: (self.before.get(k), after.get(k)) for k in set(self.before) | set(after)
                    if self.before.get(k) != after.get(k)}
            raise AssertionError('%s changed: %s' % (self.what, short(json.dumps(diff), 600)))
        return False


# ---------------------------------------------------------------------------
# Writes that produce events
# ---------------------------------------------------------------------------

class Changes:
    """
    Makes conversation changes as one client and records, for each, the event
    the stream must carry: (type, data) with data what REST returned
    (the conversation) or {"id"} for a delete.
    """

    def __init__(self, client, tag=None):
        self.client = client
        self.tag = tag or secrets.token_hex(3)
        self.expected = []
        self.live = []          # ids of conversations not yet deleted, oldest first
        self.count = 0

    def create(self, title=None):
        self.count += 1
        conv = self.client.create_conversation(title or '%s create %d' % (self.tag, self.count))
        self.expected.append(('conversation.created', conv))
        self.live.append(conv['id'])
        return conv

    def rename(self, cid=None, title=None):
        self.count += 1
        cid = cid or self.live[-1]
        conv = self.client.rename_conversation(cid, title or '%s rename %d' % (self.tag, self.count))
        self.expected.append(('conversation.updated', conv))
        return conv

    def delete(self, cid=None):
        self.count += 1
        cid = cid or self.live[0]
        self.live.remove(cid)
        data = self.client.delete_conversation(cid)
        self.expected.append(('conversation.deleted', data))
        return data

    def mixed(self, n):
        """n changes: creates, renames and deletes interleaved (each one event)."""
        start = len(self.expected)
        for i in range(n):
            k = i % 4
            if k == 0 or not self.live:
                self.create()
            elif k in (1, 2):
                self.rename(self.live[(i * 7) % len(self.live)])
            else:
                self.delete()
        return self.expected[start:]


def run_parallel(fns, timeout, what='workers'):
    """
    Runs each zero-argument callable in its own thread, all released at once,
    and waits for all of them (at most timeout seconds). Raises AssertionError
    naming the failures, or when some are still running at the deadline.
    """
    barrier = threading.Barrier(len(fns))
    errors = []

    def run(i, fn):
        try:
            barrier.wait(30)
            fn()
        except BaseException as e:     # reported below, with the worker's index
            errors.append('%s %d: %s' % (what, i, e))

    threads = [threading.Thread(target=run, args=(i, fn), daemon=True) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.01, deadline - time.monotonic()))
    running = sum(t.is_alive() for t in threads)
    if errors:
        raise AssertionError('%d of %d %s failed: %s' % (len(errors), len(fns), what, '; '.join(errors[:3])))
    if running:
        raise AssertionError('%d of %d %s still running after %ds' % (running, len(fns), what, timeout))


# ---------------------------------------------------------------------------
# AI replies: sending, and reading a reply back from events and REST
# ---------------------------------------------------------------------------

FINAL_STATUSES = ('completed', 'stopped', 'failed')


def send_message(client, cid, content='hello', model=None):
    """POST /api/conversations/{cid}/messages; returns {"user_message", "assistant_message"}."""
    body = {'content': content}
    if model is not None:
        body['model'] = model
    return client.post('/api/conversations/%s/messages' % cid, body).expect(201)


def list_messages(client, cid):
    """Every message of conversation cid, oldest first, following the cursors."""
    items, cursor = [], None
    while True:
        path = '/api/conversations/%s/messages?limit=200' % cid
        page = client.get(path + ('&cursor=' + urllib.parse.quote(cursor) if cursor else '')).expect(200)
        items += page['items']
        if not page['next']:
            return items
        cursor = page['next']


def get_message(client, cid, mid):
    """The message mid as GET /api/conversations/{cid}/messages shows it (AssertionError if absent)."""
    for m in list_messages(client, cid):
        if m['id'] == mid:
            return m
    raise AssertionError('message %s is not in conversation %s' % (mid, cid))


def wait_message(client, cid, mid, pred, timeout, what):
    """Polls REST until pred(message) holds; returns the message."""
    last = []

    def check():
        m = get_message(client, cid, mid)
        last[:] = [m]
        return m if pred(m) else None
    try:
        return wait_until(check, timeout, what, interval=0.05)
    except AssertionError as e:
        raise AssertionError('%s; last seen %s' % (e, short(json.dumps(last[0]) if last else None)))


def wait_final(client, cid, mid, timeout=30):
    """Waits until the message has a final status (REST); returns it."""
    return wait_message(client, cid, mid, lambda m: m['status'] in FINAL_STATUSES, timeout,
                        'message %s to reach a final status' % mid)


def message_events(events, mid):
    """The events (created/updated/delta) about message mid, in the order given."""
    out = []
    for e in events:
        j = e.json if isinstance(e.json, dict) else {}
        if e.event in ('message.created', 'message.updated') and j.get('id') == mid:
            out.append(e)
        elif e.event == 'message.delta' and j.get('message_id') == mid:
            out.append(e)
    return out


def statuses(events, mid):
    """The statuses message mid went through in message.created/updated events, repeats kept."""
    return [e.json['status'] for e in message_events(events, mid) if e.event != 'message.delta']


def deltas(events, mid):
    return [e for e in message_events(events, mid) if e.event == 'message.delta']


def concat_deltas(delta_events, start=0, label='deltas'):
    """
    The text of deltas that must follow each other exactly: the first at offset
    start, each next one at the end of the one before (no gap, no duplicate).
    """
    text = ''
    for e in delta_events:
        off = e.json['offset']
        assert off == start + len(text), '%s: delta id %s at offset %d, expected %d (no gap, no dup); offsets %r' % (
            label, e.id, off, start + len(text), [d.json['offset'] for d in delta_events])
        assert e.json['text'], '%s: empty delta id %s' % (label, e.id)
        text += e.json['text']
    return text


def apply_deltas(base, delta_events, label='deltas'):
    """
    What a client does: starts from base (text loaded over REST) and applies each
    delta by its offset, dropping what it already has. A delta past the end (a
    hole) or one that disagrees with the text held fails.
    """
    text = base
    for e in delta_events:
        off, piece = e.json['offset'], e.json['text']
        assert off <= len(text), '%s: hole before delta id %s: offset %d, text has %d chars' % (
            label, e.id, off, len(text))
        held = text[off:off + len(piece)]
        assert piece.startswith(held), '%s: delta id %s at %d says %r, text held there is %r' % (
            label, e.id, off, short(piece, 60), short(held, 60))
        text = text[:off] + piece if off + len(piece) >= len(text) else text
    return text


def assert_gapless(events, first_id, label='stream'):
    ids = [e.id for e in events]
    assert ids == list(range(first_id, first_id + len(ids))), \
        '%s: ids not consecutive from %d (gap or duplicate): %r' % (label, first_id, ids)


def wait_status_event(sse, mid, wanted, timeout=20):
    """Waits for a message.updated of mid whose status is in wanted; returns it."""
    wanted = (wanted,) if isinstance(wanted, str) else tuple(wanted)
    return sse.wait_for(lambda e: e.event == 'message.updated' and isinstance(e.json, dict)
                        and e.json.get('id') == mid and e.json.get('status') in wanted, timeout)


def wait_delta_chars(sse, mid, n, timeout=20):
    """Waits until sse has received at least n characters of deltas for mid."""
    def enough(e):
        return e.event == 'message.delta' and isinstance(e.json, dict) and \
            e.json.get('message_id') == mid and e.json['offset'] + len(e.json['text']) >= n
    return sse.wait_for(enough, timeout)


def fake_tokens(n):
    """What the fake upstream streams for tokens=n (without stamp)."""
    return 'tok ' * n


# ---------------------------------------------------------------------------
# The stack's processes: kill, restart, a worker with other settings
# ---------------------------------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stack_sh(script, timeout=120, check=True):
    """
    Runs script in bash with dev/lib.sh and the stack's env file sourced (the
    way the lib's header says tests restart processes). Returns stdout; raises
    AssertionError with stderr when check and the script fails.
    """
    full = '. "$MJS_TEST_LIB" && . "$MJS_STATE_DIR/env" && ' + script
    proc = subprocess.run(['bash', '-c', full], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout,
                          env=dict(os.environ, MJS_TEST_LIB=os.path.join(REPO, 'dev', 'lib.sh')))
    if check and proc.returncode != 0:
        raise AssertionError('%s failed (%d): %s' % (script, proc.returncode,
                                                     short(proc.stderr.decode('utf-8', 'replace'), 2000)))
    return proc.stdout.decode('utf-8', 'replace')


def proc_pid(name):
    """The pid of the stack's process NAME (worker, api-1, ...) or None when it does not run."""
    out = stack_sh('mjs_pid %s' % shlex.quote(name), check=False).strip()
    return int(out) if out.isdigit() else None


def _pid_alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rsplit(')', 1)[1].split()[0] != 'Z'


def kill9(name, timeout=10):
    """SIGKILL to the stack's process NAME; returns once it is gone."""
    pid = proc_pid(name)
    assert pid, '%s is not running' % name
    os.kill(pid, 9)
    wait_until(lambda: not _pid_alive(pid), timeout, '%s (pid %d) to die' % (name, pid))
    return pid


def stream_fds(name):
    """
    The open SSE streams process NAME holds (mjs-api moves stream fds above
    1024), as a set of (fd, socket inode): a stream opened since an earlier
    call is a new member, whatever other streams closed meanwhile.
    """
    pid = proc_pid(name)
    assert pid, '%s is not running' % name
    out = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        if int(fd) >= 1024:
            try:
                out.add((int(fd), os.readlink('/proc/%d/fd/%s' % (pid, fd))))
            except OSError:
                pass        # closed meanwhile
    return out


def start_api(n, conf=None):
    """
    Starts responder n (mjs_start_api) unless it runs, with the stack's mjs.conf
    or conf; returns once it answers /api/healthz.
    """
    if proc_pid('api-%d' % n) is None:
        stack_sh('mjs_start_api %d %s' % (n, shlex.quote(conf) if conf else ''))


class apis_with:
    """
    Context manager: both responders restarted with the stack's mjs.conf plus
    keys inside; restarted with the stack's own configuration after it.
    """

    def __init__(self, **keys):
        self.keys = keys

    def __enter__(self):
        conf = self.conf = stack_conf(self.keys, 'api-test.conf')
        stack_sh('mjs_stop api-1 api-2')
        start_api(1, conf)
        start_api(2, conf)
        return self

    def __exit__(self, *exc):
        stack_sh('mjs_stop api-1 api-2')
        start_api(1)
        start_api(2)
        return False


def worker_conf(keys):
    return stack_conf(keys, 'worker-test.conf')


def stack_conf(keys, name):
    """
    Writes a copy of the stack's mjs.conf with keys (name -> value) replaced or
    added, as file name in the state directory (so the process's command line
    names the stack); returns its path.
    """
    conf = env().get('MJS_CONF') or os.path.join(env()['MJS_STATE_DIR'], 'mjs.conf')
    with open(conf, encoding='utf-8') as f:
        lines = [l for l in f.read().splitlines()
                 if l.split('=', 1)[0].strip() not in keys]
    lines.append('# test settings')
    lines += ['%s = %s' % kv for kv in keys.items()]
    path = os.path.join(env()['MJS_STATE_DIR'], name)
    with open(path + '.new', 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    os.replace(path + '.new', path)
    return path


def start_worker(**keys):
    """
    Replaces the stack's worker: stops the running one (if any, gracefully) and
    starts mjs-worker with the stack's mjs.conf plus keys (e.g. lease_time='3s');
    without keys, the stack's own configuration. The new one has the worker pid
    file, so dev/down stops it.
    """
    stack_sh('mjs_stop worker')
    if keys:
        keys.setdefault('shutdown_grace', '0')
        stack_sh('mjs_start_worker %s' % shlex.quote(worker_conf(keys)))
    else:
        stack_sh('mjs_start_worker')
    assert proc_pid('worker'), 'the worker did not start'


class worker_with:
    """
    Context manager: a worker with extra settings inside; the stack's own worker
    after it (always), unless restore() already started it.
    """

    def __init__(self, **keys):
        self.keys = keys
        self.restored = False

    def __enter__(self):
        start_worker(**self.keys)
        return self

    def restore(self):
        """Replaces whatever worker runs (or none) with the stack's own."""
        start_worker()
        self.restored = True

    def __exit__(self, *exc):
        if not self.restored:
            self.restore()
        return False


# ---------------------------------------------------------------------------
# Image and video tasks
# ---------------------------------------------------------------------------

TASK_FINAL = ('succeeded', 'failed')
TASK_EVENTS = ('task.created', 'task.updated', 'task.deleted', 'task.restored')


def create_task(client, kind, prompt, **fields):
    """POST /api/tasks; returns the task (201 expected)."""
    body = dict(fields, kind=kind, prompt=prompt)
    return client.post('/api/tasks', body).expect(201)


def get_task(client, tid):
    return client.get('/api/tasks/' + tid).expect(200)


def list_tasks(client, deleted=False, **query):
    q = dict(query)
    if deleted:
        q['deleted'] = '1'
    path = '/api/tasks' + ('?' + urllib.parse.urlencode(q) if q else '')
    return client.get(path).expect(200)


def wait_task(client, tid, pred, timeout, what):
    """Polls GET /api/tasks/{tid} until pred(task); returns the task."""
    last = []

    def check():
        t = get_task(client, tid)
        last[:] = [t]
        return t if pred(t) else None
    try:
        return wait_until(check, timeout, what, interval=0.05)
    except AssertionError as e:
        raise AssertionError('%s; last seen %s' % (e, short(json.dumps(last[0]) if last else None)))


def wait_task_final(client, tid, timeout=30):
    return wait_task(client, tid, lambda t: t['status'] in TASK_FINAL, timeout,
                     'task %s to succeed or fail' % tid)


def task_events(events, tid):
    """The task.* events about task tid, in the order given."""
    return [e for e in events if e.event in TASK_EVENTS and isinstance(e.json, dict)
            and e.json.get('id') == tid]


def wait_task_event(sse, tid, pred, timeout=20):
    """Waits for a task.* event of tid with pred(event); returns it."""
    return sse.wait_for(lambda e: e.event in TASK_EVENTS and isinstance(e.json, dict)
                        and e.json.get('id') == tid and pred(e), timeout)


def sync_streams(client, streams, timeout=20):
    """
    A marker: client creates a conversation and every stream in streams (all of
    client's user) waits for its conversation.created. Events committed before it
    are then on each stream; returns the marker's id.
    """
    conv = client.create_conversation('marker')
    for s in streams:
        s.wait_for(lambda e: e.event == 'conversation.created' and isinstance(e.json, dict)
                   and e.json.get('id') == conv['id'], timeout)
    return conv['id']


def fake_tasks(prompt):
    """The fake upstream's jobs submitted with exactly this prompt."""
    with urllib.request.urlopen(env()['MJS_FAKE_URL'].rstrip('/') + '/fake/tasks', timeout=5) as r:
        tasks = json.loads(r.read().decode('utf-8'))['tasks']
    return [t for t in tasks if t['prompt'] == prompt]


def db_task(tid):
    """The task's job columns as the database holds them."""
    return psql_json("""
        SELECT json_build_object('status', status, 'progress', progress, 'upstream_id', upstream_id,
                                 'worker', worker, 'attempts', attempts, 'deleted_at', deleted_at)
        FROM mjs.tasks WHERE id = :'p1'""", tid)


def db_tasks_snapshot(*user_ids):
    """Every task row of these users as text, for "nothing changed" checks."""
    return psql_value("""
        SELECT coalesce(json_agg(t ORDER BY t.id)::text, '[]') FROM mjs.tasks t
        WHERE t.user_id::text = ANY (string_to_array(:'p1', ','))""", ','.join(user_ids))

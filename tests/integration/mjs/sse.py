"""
sse: a real SSE client over a raw socket (SSE), its chunked and event-stream
parsers, and the check that a stream saw exactly the stored events.
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
from .base import *  # noqa: F401,F403
from .client import *  # noqa: F401,F403


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
    """
    One dispatched SSE event: id (the seq, an int, when the id is mjs's
    "EPOCH.SEQ" or a bare number; else the text), epoch (int or None), raw_id
    (the id as sent), event type, data text and
    its JSON; received_at (time.monotonic) and received_ns (time.time_ns, the
    clock the fake upstream's stamp knob writes into tokens) when it was parsed.
    """

    __slots__ = ('id', 'epoch', 'raw_id', 'event', 'data', 'json', 'received_at', 'received_ns')

    def __init__(self, id, event, data):
        self.raw_id = id
        self.epoch, self.id = split_id(id)
        self.event = event
        self.data = data
        try:
            self.json = json.loads(data)
        except ValueError:
            self.json = None
        self.received_at = time.monotonic()
        self.received_ns = time.time_ns()

    def __repr__(self):
        return 'Event(id=%r, event=%r, data=%s)' % (self.id, self.event, short(self.data, 160))


def split_id(text):
    """(epoch, seq) of an mjs event id "EPOCH.SEQ" (epoch None for a bare
    "SEQ"); (None, text) for anything else."""
    epoch, dot, seq = text.rpartition('.')
    if seq.isascii() and seq.isdigit() and (not dot or (epoch.isascii() and epoch.isdigit())):
        return (int(epoch) if dot else None), int(seq)
    return None, text


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
                self.marker_ids.append(split_id(block_id)[1])
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

        scheme, host, port, netloc = url_parts()
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

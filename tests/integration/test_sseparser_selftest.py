"""
Self-test of the suite's own SSE machinery (no stack needed): the chunked
decoder and the text/event-stream parser fed byte by byte and in random
splits, and the SSE client against a tiny local stub server that speaks
chunked HTTP/1.1 the way nginx does.

Run alone with `python3 tests/integration/test_sseparser_selftest.py`.
"""

import os
import random
import socket
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mjs  # noqa: E402

STREAM = (
    '\ufeffretry: 2000\n\n'
    'id: 7\n\n'
    ': keepalive\n\n'
    'id: 8\nevent: conversation.created\ndata: {"id":"a","title":"h\u00e9llo \U0001F600"}\n\n'
    'id: 9\r\nevent: conversation.updated\r\ndata: {"id":"a",\r\ndata:"title":"x"}\r\n\r\n'
    'id:10\revent:conversation.deleted\rdata:{"id":"a"}\r\r'
    'data: no id field here\n\n'
    'event: ignored-without-data\n\n'
    'data\n\n'
    'id: 11\nunknown: field\ndata:  two spaces\n\n'
    'id: 12\ndata: incomplete at end'
).encode('utf-8')

EXPECTED = [
    (8, 'conversation.created', '{"id":"a","title":"h\u00e9llo \U0001F600"}'),
    (9, 'conversation.updated', '{"id":"a",\n"title":"x"}'),
    (10, 'conversation.deleted', '{"id":"a"}'),
    (10, 'message', 'no id field here'),
    (10, 'message', ''),
    (11, 'message', ' two spaces'),
]


def parse_all(pieces):
    p = mjs.SSEParser()
    events = []
    for piece in pieces:
        events += p.feed(piece)
    return p, [(e.id, e.event, e.data) for e in events]


def random_splits(data, rng):
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 9)
        out.append(data[i:i + n])
        i += n
    return out


def chunk(data, sizes, end=True):
    out, i = [], 0
    for n in sizes:
        part = data[i:i + n]
        if not part:
            break
        out.append(b'%x;ext=1\r\n' % len(part) + part + b'\r\n')
        i += n
    if i < len(data):
        out.append(b'%X\r\n' % (len(data) - i) + data[i:] + b'\r\n')
    return b''.join(out) + (b'0\r\nX-Trailer: y\r\n\r\n' if end else b'')


def test_sse_parser_follows_the_html_standard_byte_by_byte_and_in_random_splits():
    p, events = parse_all([STREAM])
    assert events == EXPECTED, events
    assert p.retry == 2000 and p.comments == 1 and p.marker_ids == [7], (p.retry, p.comments, p.marker_ids)
    _, events = parse_all([STREAM[i:i + 1] for i in range(len(STREAM))])
    assert events == EXPECTED, events
    rng = random.Random(1)
    for _ in range(200):
        _, events = parse_all(random_splits(STREAM, rng))
        assert events == EXPECTED, events
    p, events = parse_all([b'data: a\r', b'\ndata: b\r', b'\n\r', b'\n'])
    assert events == [('', 'message', 'a\nb')], events


def test_chunked_decoder_reassembles_the_body_in_any_split():
    rng = random.Random(2)
    for _ in range(100):
        sizes = [rng.randint(1, 40) for _ in range(50)]
        wire = chunk(STREAM, sizes)
        d = mjs.ChunkedDecoder()
        out = b''.join(d.feed(piece) for piece in random_splits(wire, rng))
        assert out == STREAM and d.done
    d = mjs.ChunkedDecoder()
    out = b''.join(d.feed(wire[i:i + 1]) for i in range(len(wire)))
    assert out == STREAM and d.done
    try:
        mjs.ChunkedDecoder().feed(b'zz\r\n')
    except ValueError:
        pass
    else:
        raise AssertionError('a bad chunk size was accepted')


class StubServer:
    """Accepts connections and answers each with the given raw bytes, in pieces."""

    def __init__(self, response_pieces, hold_open=True):
        self.pieces = response_pieces
        self.hold_open = hold_open
        self.requests = []
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.conns.append(conn)
        req = b''
        while b'\r\n\r\n' not in req:
            data = conn.recv(4096)
            if not data:
                return
            req += data
        self.requests.append(req.decode('latin-1'))
        for piece in self.pieces:
            conn.sendall(piece)
        if not self.hold_open:
            conn.close()

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()
        self.thread.join(5)


def with_stub(pieces, fn, hold_open=True):
    server = StubServer(pieces, hold_open)
    saved = mjs.base._env_cache
    mjs.base._env_cache = {'MJS_URL': 'http://127.0.0.1:%d' % server.port, 'MJS_DSN': ''}
    try:
        return fn(server)
    finally:
        mjs.base._env_cache = saved
        server.close()


def test_sse_client_decodes_a_chunked_stream_and_sends_last_event_id():
    head = b'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n'
    rng = random.Random(3)
    wire = head + chunk(STREAM, [rng.randint(1, 30) for _ in range(100)])
    pieces = random_splits(wire, rng)

    def check(server):
        c = mjs.Client()
        c.cookies['mjs_session'] = 'tok'
        with mjs.SSE(c, last_event_id=6) as s:
            got = s.wait_count(len(EXPECTED), 5)
            assert [(e.id, e.event, e.data) for e in got] == EXPECTED, got
            assert got[0].json == {'id': 'a', 'title': 'h\u00e9llo \U0001F600'}
            assert s.wait_closed(5) and s.close_reason == 'the response ended', s.close_reason
            assert s.status == 200 and s.retry == 2000
        req = server.requests[0]
        assert 'Cookie: mjs_session=tok\r\n' in req and 'Last-Event-ID: 6\r\n' in req, req
    with_stub(pieces, check)


def test_sse_client_waits_for_the_start_mark_and_reports_errors():
    head = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
    body = b'retry: 2000\n\nid: 42\n\n'

    def check_open(server):
        with mjs.SSE(mjs.Client(), query_last_event_id=None) as s:
            assert s.start_id == 42 and s.events() == [], (s.start_id, s.events())
        assert server.requests[0].startswith('GET /api/events HTTP/1.1\r\n'), server.requests
    with_stub([head, chunk(body, [5, 100], end=False)], check_open)

    err = b'{"error":{"code":"unauthorized","message":"log in"}}'
    resp = b'HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n' % len(err)

    def check_error(server):
        with mjs.SSE(mjs.Client(), query_last_event_id=3) as s:
            assert s.status == 401 and s.json['error']['code'] == 'unauthorized', (s.status, s.body)
        assert server.requests[0].startswith('GET /api/events?last_event_id=3 HTTP/1.1'), server.requests
    with_stub([resp, err], check_error)


def test_env_file_parser_reads_shell_assignments():
    text = ("# comment\nMJS_URL=http://127.0.0.1:8080\nexport MJS_DSN='host=/tmp/x y port=5432 dbname=mjs'\n"
            'MJS_API_PIDS="1 2"\nnot an assignment\nMJS_Q=\'it\'\\\'\'s\'\nMJS_PID=\nMJS_E=\'\'\n')
    got = mjs.parse_env_file(text)
    assert got == {'MJS_URL': 'http://127.0.0.1:8080', 'MJS_DSN': 'host=/tmp/x y port=5432 dbname=mjs',
                   'MJS_API_PIDS': '1 2', 'MJS_Q': "it's", 'MJS_PID': '', 'MJS_E': ''}, got


if __name__ == '__main__':
    for name, fn in list(globals().items()):
        if name.startswith('test_') and callable(fn):
            fn()
            print('PASS', name)

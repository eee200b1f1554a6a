#!/usr/bin/env python3
"""
bench/fair.py: one user's backlog against another user's first token (run by
bench/run fair, on a stack it started; see its header).

  fair.py URL COOKIE_A CONV_A COOKIE_B CONV_B BACKLOG SAMPLES

User B sends SAMPLES replies one after another on an idle system, each once the
previous one streamed its first token, and the time from its POST to the first
message.delta on B's own stream is taken (B's time to first token). Then user A
queues BACKLOG replies (of 1 to 6 s each, so slots free at different times)
and B does the same again while A's backlog waits. Prints both series
(bench/run adds what the database says about the order the jobs started in).
"""

import http.client
import json
import random
import statistics
import sys
import threading
import time
import urllib.parse


def conn_for(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)


class Stream(threading.Thread):
    """GET /api/events for one cookie; notes when each message's first delta arrives."""

    def __init__(self, url, cookie):
        super().__init__(daemon=True)
        self.url, self.cookie = url, cookie
        self.first_delta = {}
        self.cond = threading.Condition()
        self.opened = threading.Event()
        self.ended = False

    def run(self):
        try:
            self.read()
        finally:
            with self.cond:
                self.ended = True
                self.cond.notify_all()

    def read(self):
        c = conn_for(self.url)
        c.request('GET', '/api/events', headers={'Cookie': self.cookie, 'Accept': 'text/event-stream'})
        r = c.getresponse()
        if r.status != 200:
            raise SystemExit('events: HTTP %d %s' % (r.status, r.read()[:200]))
        self.opened.set()
        event = None
        while True:
            line = r.readline()
            if not line:
                return
            line = line.rstrip(b'\r\n')
            if line.startswith(b'event: '):
                event = line[7:]
            elif line.startswith(b'data: ') and event == b'message.delta':
                mid = json.loads(line[6:])['message_id']
                with self.cond:
                    if mid not in self.first_delta:
                        self.first_delta[mid] = time.monotonic()
                        self.cond.notify_all()
            elif not line:
                event = None

    def wait_first(self, mid, timeout):
        with self.cond:
            if not self.cond.wait_for(lambda: mid in self.first_delta or self.ended, timeout):
                raise SystemExit('no first token for %s after %d s' % (mid, timeout))
            if mid not in self.first_delta:
                raise SystemExit('the events stream ended')
            return self.first_delta[mid]


def send(conn, cookie, conv, model):
    body = json.dumps({'content': 'fairness bench', 'model': model})
    conn.request('POST', '/api/conversations/%s/messages' % conv, body,
                 {'Cookie': cookie, 'Content-Type': 'application/json'})
    r = conn.getresponse()
    data = r.read()
    if r.status != 201:
        raise SystemExit('send: HTTP %d %s' % (r.status, data[:200]))
    return json.loads(data)['assistant_message']['id']


def main():
    url, cookie_a, conv_a, cookie_b, conv_b = sys.argv[1:6]
    backlog, samples = int(sys.argv[6]), int(sys.argv[7])
    stream_b = Stream(url, cookie_b)
    stream_b.start()
    if not stream_b.opened.wait(30):
        raise SystemExit('events stream did not open')
    cb = conn_for(url)

    def b_series():
        out = []
        for _ in range(samples):
            t0 = time.monotonic()
            mid = send(cb, cookie_b, conv_b, 'fake:tps=20:tokens=5')
            out.append((stream_b.wait_first(mid, 120) - t0) * 1000)
        return out

    idle = b_series()
    ca = conn_for(url)
    rnd = random.Random(7)
    t0 = time.monotonic()
    for _ in range(backlog):
        send(ca, cookie_a, conv_a, 'fake:tps=20:tokens=%d' % rnd.randint(20, 120))
    queued_s = time.monotonic() - t0
    loaded = b_series()
    print('A queued %d replies in %.1f s; B sent %d replies idle, then %d behind A\'s backlog'
          % (backlog, queued_s, samples, samples))
    print('%-36s %10s %10s %10s' % ("B's time to first token", 'p50 ms', 'max ms', 'n'))
    for label, xs in (('idle system', idle), ("behind A's %d queued" % backlog, loaded)):
        print('%-36s %10.1f %10.1f %10d' % (label, statistics.median(xs), max(xs), len(xs)))
    sys.stdout.flush()


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""
bench/soak.py: the steady mixed load and the samples of `bench/run soak` (see its header).

  soak.py STATE_DIR USERS_FILE LOAD_OUT SECONDS INTERVAL REPLIES TPS

Runs for SECONDS on the stack in STATE_DIR (its env file names the processes),
with the users of USERS_FILE ("COOKIE CONVERSATION" per line; sse_load holds
their tabs and renames their conversations):
  - replies: one sent every 10/REPLIES s, round robin over the users, each
    "fake:tps=TPS:tokens=10*TPS:stamp" (10 s), so about REPLIES stream at once;
  - each user's replies go to a conversation of their own, deleted after 20
    replies and made anew (users clear their history: the messages table
    reaches a steady size, as events should);
  - an image task every 5 s, one in four of them deleted later;
  - tabs coming and going: short-lived streams (5-60 s) of random users,
    about a tenth of the users at a time, opened and closed all along.
Every INTERVAL seconds it prints one row: RSS of each process, sizes and dead
rows of the busy tables, WAL written, and the interval's token-to-tab and
change-to-tab p99 from sse_load's -I lines in LOAD_OUT. Stops by itself.
"""

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

STOP = threading.Event()
ERRORS = {'send': 0, 'task': 0, 'conv': 0, 'tab': 0}


def env_file(state):
    out = {}
    with open(os.path.join(state, 'env'), encoding='utf-8') as f:
        for line in f:
            if '=' in line:
                k, v = line.rstrip('\n').split('=', 1)
                out[k] = v.strip("'")
    return out


class Api:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.conn = None

    def call(self, method, path, cookie, body=None):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                headers = {'Cookie': cookie}
                data = None
                if body is not None:
                    data = json.dumps(body)
                    headers['Content-Type'] = 'application/json'
                self.conn.request(method, path, data, headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                self.conn = None
                if attempt:
                    raise
        return 0, b''


def psql(dsn, sql):
    out = subprocess.run(['psql', dsn, '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', sql],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return out.stdout.decode().strip() if out.returncode == 0 else ''


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open('/proc/%d/status' % pid) as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def children(pid):
    out = [pid]
    try:
        for line in subprocess.run(['ps', '-o', 'pid=', '--ppid', str(pid)], stdout=subprocess.PIPE,
                                   timeout=10).stdout.decode().split():
            out.append(int(line))
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return out


def replies(api, users, every, tps):
    """Replies go to a conversation of their own per user (the writer renames the
    users file's one: its stamped titles must not come back in other events)."""
    convs = [None] * len(users)
    counts = [0] * len(users)
    i = 0
    next_at = time.monotonic()
    while not STOP.is_set():
        u = i % len(users)
        cookie = users[u][0]
        try:
            if convs[u] is None or counts[u] >= 20:
                if convs[u] is not None:
                    api.call('DELETE', '/api/conversations/%s' % convs[u], cookie)
                st, body = api.call('POST', '/api/conversations', cookie, {'title': 'soak'})
                if st == 201:
                    convs[u] = json.loads(body)['id']
                    counts[u] = 0
                else:
                    ERRORS['conv'] += 1
            st, _ = api.call('POST', '/api/conversations/%s/messages' % convs[u], cookie,
                             {'content': 'soak', 'model': 'fake:tps=%d:tokens=%d:stamp' % (tps, 10 * tps)})
            if st == 201:
                counts[u] += 1
            else:
                ERRORS['send'] += 1
        except OSError:
            ERRORS['send'] += 1
        i += 1
        next_at += every
        STOP.wait(max(0.0, next_at - time.monotonic()))


def tasks(api, users):
    made = []
    i = 0
    while not STOP.wait(5):
        cookie, _ = users[i % len(users)]
        i += 1
        try:
            st, body = api.call('POST', '/api/tasks', cookie, {'kind': 'image', 'prompt': 'fake:steps=2:step=1 soak'})
            if st != 201:
                ERRORS['task'] += 1
                continue
            made.append((cookie, json.loads(body)['id']))
            if len(made) >= 8:
                c, tid = made.pop(0)
                if random.random() < 0.25:
                    api.call('DELETE', '/api/tasks/%s' % tid, c)
        except OSError:
            ERRORS['task'] += 1


def tab(host, port, cookie, seconds):
    try:
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(('GET /api/events HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n'
                   'Cookie: %s\r\n\r\n' % (host, port, cookie)).encode())
        end = time.monotonic() + seconds
        s.settimeout(1)
        while time.monotonic() < end and not STOP.is_set():
            try:
                if not s.recv(65536):
                    ERRORS['tab'] += 1
                    break
            except socket.timeout:
                pass
        s.close()
    except OSError:
        ERRORS['tab'] += 1


def churn(host, port, users):
    live = []
    want = max(1, len(users) // 10)
    while not STOP.wait(0.5):
        live = [t for t in live if t.is_alive()]
        while len(live) < want:
            cookie, _ = random.choice(users)
            t = threading.Thread(target=tab, args=(host, port, cookie, random.uniform(5, 60)), daemon=True)
            t.start()
            live.append(t)


def interval_lines(load_out):
    try:
        with open(load_out, encoding='utf-8') as f:
            return [l for l in f if l.startswith('interval:')]
    except OSError:
        return []


def last_interval(load_out, seen):
    """sse_load's newest -I line, waiting a few seconds for one newer than the seen-th."""
    deadline = time.monotonic() + 10
    lines = interval_lines(load_out)
    while len(lines) <= seen and time.monotonic() < deadline:
        time.sleep(0.2)
        lines = interval_lines(load_out)
    if len(lines) <= seen:
        return {}
    out, typ = {}, None
    for word in lines[-1].split():
        if word.endswith(':') and word != 'interval:':
            typ = word[:-1]
        elif '=' in word:
            k, v = word.split('=', 1)
            out[(typ + '.' + k) if typ else k] = v
    return out


def main():
    state, users_file, load_out = sys.argv[1:4]
    seconds, interval, nreplies, tps = (int(x) for x in sys.argv[4:8])
    e = env_file(state)
    host, port = '127.0.0.1', int(e['MJS_PORT'])
    dsn = e['MJS_DSN']
    with open(users_file, encoding='utf-8') as f:
        users = [tuple(l.split()[:2]) for l in f if l.strip()]
    procs = {'api': [int(e[k]) for k in e if k.startswith('MJS_API_') and k.endswith('_PID') and e[k]],
             'worker': [int(e['MJS_WORKER_PID'])], 'nginx': children(int(e['MJS_NGINX_PID'])),
             'postgres': children(int(e['MJS_PG_PID']))}
    lsn0 = psql(dsn, 'SELECT pg_current_wal_lsn()')
    threads = [threading.Thread(target=replies, args=(Api(host, port), users, 10.0 / nreplies, tps), daemon=True),
               threading.Thread(target=tasks, args=(Api(host, port), users), daemon=True),
               threading.Thread(target=churn, args=(host, port, users), daemon=True)]
    for t in threads:
        t.start()
    tables = ['events', 'messages', 'message_chunks', 'generations']
    print('%6s %9s %9s %9s %9s | %8s %8s %8s %8s | %9s %9s %7s %7s | %8s %8s %6s'
          % ('min', 'api KiB', 'worker', 'nginx', 'postgres', 'events', 'messages', 'chunks', 'gens',
             'ev rows', 'ev dead', 'msg dd', 'WAL MB', 'tok p99', 'chg p99', 'lost'))
    print('%6s %9s %9s %9s %9s | %8s %8s %8s %8s | %9s %9s %7s %7s | %8s %8s %6s'
          % ('', '', '', '', '', 'MiB', 'MiB', 'MiB', 'MiB', '', '', '', '', 'ms', 'ms', ''))
    start = time.monotonic()
    next_sample = start + interval
    seen = len(interval_lines(load_out))
    while True:
        now = time.monotonic()
        if now >= start + seconds:
            break
        time.sleep(min(5.0, max(0.0, next_sample - now)))
        if time.monotonic() < next_sample:
            continue
        next_sample += interval
        procs['nginx'] = children(int(e['MJS_NGINX_PID']))
        procs['postgres'] = children(int(e['MJS_PG_PID']))
        sizes = psql(dsn, "SELECT string_agg(round(pg_total_relation_size('mjs.' || t) / 1048576.0, 1)::text, ' ' "
                          "ORDER BY o) FROM unnest(ARRAY['%s']) WITH ORDINALITY AS x(t, o)" % "','".join(tables)).split()
        stat = psql(dsn, "SELECT n_live_tup, n_dead_tup, (SELECT n_dead_tup FROM pg_stat_user_tables "
                         "WHERE relid = 'mjs.messages'::regclass), round(pg_wal_lsn_diff(pg_current_wal_lsn(), '%s') "
                         "/ 1048576.0) FROM pg_stat_user_tables WHERE relid = 'mjs.events'::regclass" % lsn0).split('|')
        li = last_interval(load_out, seen)
        seen += 1 if li else 0
        print('%6.1f %9d %9d %9d %9d | %8s %8s %8s %8s | %9s %9s %7s %7s | %8s %8s %6s'
              % ((time.monotonic() - start) / 60, rss_kb(procs['api']), rss_kb(procs['worker']),
                 rss_kb(procs['nginx']), rss_kb(procs['postgres']), *(sizes + ['?'] * 4)[:4],
                 *(stat + ['?'] * 4)[:4], li.get('message.delta.p99_ms', '-'),
                 li.get('conversation.updated.p99_ms', '-'), li.get('lost', '-')))
        sys.stdout.flush()
    STOP.set()
    print('driver errors: %s' % ' '.join('%s=%d' % kv for kv in ERRORS.items()))


if __name__ == '__main__':
    main()

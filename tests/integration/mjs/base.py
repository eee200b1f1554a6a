"""
base: the stack's coordinates (its env file) and the helpers every test uses: unique
names, waits on conditions with deadlines, per-test timeouts, and threads that
change things concurrently (Changes, run_parallel).
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


def url_parts():
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

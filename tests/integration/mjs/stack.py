"""
stack: the stack's processes: dev/lib.sh from Python, pids, kill -9,
responders and workers started with other config keys for one test.
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


# ---------------------------------------------------------------------------
# The stack's processes: kill, restart, a worker with other settings
# ---------------------------------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


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

#!/usr/bin/env python3
"""
run.py: runs the integration tests against an already running stack.

    MJS_STATE_DIR=/tmp/mjs-it python3 tests/integration/run.py [-v] [FILTER...]

Discovers every function named test_* in tests/integration/test_*.py and runs
each in its own child process with a deadline (60 s unless the test says
otherwise with @mjs.timeout, scaled by MJS_TEST_TIMEOUT_SCALE), so a test that
hangs is killed together with its threads, sockets and psql processes and the
next one starts clean. Prints `PASS name (0.4s)` or `FAIL name: reason` per
test and ends with `N passed, N failed`; exits 1 if any test failed.

A FILTER selects the tests whose "module.function" name contains it.
-v prints a failing test's traceback and output; --list lists the tests.
"""

import importlib
import inspect
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True      # leave no __pycache__ in the source tree
DEFAULT_TIMEOUT = 60


def discover():
    """[(module name, function name, timeout seconds)] in file, then definition, order."""
    sys.path.insert(0, HERE)
    tests = []
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith('test_') and fname.endswith('.py')):
            continue
        modname = fname[:-3]
        mod = importlib.import_module(modname)
        funcs = [(name, fn) for name, fn in vars(mod).items()
                 if name.startswith('test_') and inspect.isfunction(fn) and fn.__module__ == modname]
        funcs.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
        for name, fn in funcs:
            tests.append((modname, name, getattr(fn, 'timeout', DEFAULT_TIMEOUT)))
    return tests


def one_line(s):
    return ' '.join(s.split())


def failure_reason(exc):
    """The exception's message and where in a test file it was raised."""
    where = ''
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if os.path.basename(frame.filename).startswith('test_'):
            where = ' [%s:%d]' % (os.path.basename(frame.filename), frame.lineno)
            break
    msg = str(exc) or type(exc).__name__
    if not isinstance(exc, AssertionError):
        msg = '%s: %s' % (type(exc).__name__, msg)
    return one_line(msg) + where


def child(modname, funcname, result_path):
    """Runs one test in this process; writes {"ok", "reason"} to result_path."""
    sys.path.insert(0, HERE)
    result = {'ok': False, 'reason': 'did not finish'}
    try:
        fn = getattr(importlib.import_module(modname), funcname)
        fn()
        result = {'ok': True, 'reason': ''}
    except BaseException as e:     # a test's failure, whatever it raised
        traceback.print_exc()
        result = {'ok': False, 'reason': failure_reason(e)}
    with open(result_path, 'w', encoding='utf-8') as f:
        json.dump(result, f)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)     # do not wait for threads a failed test left behind


def run_one(modname, funcname, timeout, verbose):
    with tempfile.TemporaryDirectory(prefix='mjs-it-') as tmp:
        result_path = os.path.join(tmp, 'result.json')
        log_path = os.path.join(tmp, 'output.log')
        t0 = time.monotonic()
        with open(log_path, 'wb') as log:
            proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), '--child',
                                     modname, funcname, result_path],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=dict(os.environ, PYTHONDONTWRITEBYTECODE='1'),
                                    start_new_session=True)
            try:
                proc.wait(timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)     # the test's psql children too
                except ProcessLookupError:
                    pass
                proc.wait()
        elapsed = time.monotonic() - t0
        if timed_out:
            ok, reason = False, 'timed out after %ds' % timeout
        else:
            try:
                with open(result_path, encoding='utf-8') as f:
                    r = json.load(f)
                ok, reason = r['ok'], r['reason']
            except (OSError, ValueError):
                ok, reason = False, 'test process exited with status %s and no result' % proc.returncode
        output = ''
        if not ok and verbose:
            with open(log_path, 'rb') as f:
                output = f.read().decode('utf-8', 'replace')
        return ok, reason, elapsed, output


def main(argv):
    if len(argv) >= 4 and argv[0] == '--child':
        child(argv[1], argv[2], argv[3])
        return 0
    verbose = '-v' in argv
    listing = '--list' in argv
    filters = [a for a in argv if not a.startswith('-')]

    if not os.environ.get('MJS_STATE_DIR'):
        print('run.py: MJS_STATE_DIR is not set; start a stack with dev/up --detach and export it',
              file=sys.stderr)
        return 2
    sys.path.insert(0, HERE)
    import mjs
    try:
        mjs.env()
    except RuntimeError as e:
        print('run.py: %s' % e, file=sys.stderr)
        return 2

    tests = discover()
    seen = {}
    for modname, name, _ in tests:
        if name in seen:
            print('run.py: test %s is defined in both %s and %s' % (name, seen[name], modname),
                  file=sys.stderr)
            return 2
        seen[name] = modname
    if filters:
        tests = [t for t in tests if any(f in '%s.%s' % (t[0], t[1]) for f in filters)]
    if filters and not tests:
        print('run.py: no test matches %s' % ' '.join(filters), file=sys.stderr)
    if listing:
        for modname, name, tmo in tests:
            print('%s.%s (%ds)' % (modname, name, tmo))
        return 0

    scale = float(os.environ.get('MJS_TEST_TIMEOUT_SCALE', '1') or 1)
    passed = failed = 0
    for modname, name, tmo in tests:
        ok, reason, elapsed, output = run_one(modname, name, max(1, int(tmo * scale)), verbose)
        if ok:
            passed += 1
            print('PASS %s (%.1fs)' % (name, elapsed), flush=True)
        else:
            failed += 1
            print('FAIL %s: %s' % (name, reason), flush=True)
            if output:
                for line in output.rstrip('\n').split('\n'):
                    print('    | ' + line)
                sys.stdout.flush()
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed or not tests else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

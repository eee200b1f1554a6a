"""
SIGHUP (systemctl reload): the responders and the worker re-read mjs.conf,
apply log_level, say so in their log, and keep serving.
"""

import os
import signal

import mjs

WAIT = 10


def log_path(name):
    e = mjs.env()
    return os.path.join(e.get('MJS_LOG_DIR') or os.path.join(e['MJS_STATE_DIR'], 'logs'), name + '.log')


@mjs.timeout(60)
def test_sighup_reloads_log_level_and_the_daemons_keep_serving():
    for name in ('api-1', 'api-2', 'worker'):
        path = log_path(name)
        start = os.path.getsize(path)
        pid = mjs.proc_pid(name)
        assert pid, '%s is not running' % name
        os.kill(pid, signal.SIGHUP)

        def reloaded():
            with open(path, encoding='utf-8', errors='replace') as f:
                f.seek(start)
                return 'SIGHUP: reloaded log_level=' in f.read()
        mjs.wait_until(reloaded, WAIT, '%s to log the reload' % name)
        assert mjs.proc_pid(name) == pid, '%s did not survive SIGHUP' % name
    with mjs.Client() as c:
        c.signup()
        conv = c.create_conversation('after reload')
        sent = mjs.send_message(c, conv['id'], 'hi', 'fake:tokens=5')
        final = mjs.wait_final(c, conv['id'], sent['assistant_message']['id'], 20)
        assert final['status'] == 'completed', final

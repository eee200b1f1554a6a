"""
Tabs that go away while events are being written to them: the responder
that held them must notice the closed connection in the middle of a write
(nginx closes its FastCGI connection when the browser's goes), drop just
those streams, and go on serving everything else. Under ASan a stream freed
twice or used after it was closed aborts the responder, which this notices.
"""

import threading
from contextlib import ExitStack

import mjs

STREAMS = 40
RENAMES = 300
WAIT = 30


@mjs.timeout(120)
def test_tabs_closing_mid_delivery_leave_the_responders_up_and_other_tabs_whole():
    with ExitStack() as stack:
        # forty tabs of one user: above the default cap per responder
        stack.enter_context(mjs.apis_with(max_streams_per_user='100'))
        c = stack.enter_context(mjs.Client())
        c.signup()
        conv = c.create_conversation('burst')['id']
        keeper = stack.enter_context(mjs.SSE(c))
        leaving = [mjs.SSE(c, rcvbuf=4096) for _ in range(STREAMS)]
        try:
            assert all(s.status == 200 for s in leaving), [s.status for s in leaving]
            pids = {n: mjs.proc_pid(n) for n in ('api-1', 'api-2')}
            writer = stack.enter_context(c.another_device())
            errors = []

            def write():
                try:
                    for i in range(RENAMES):
                        writer.rename_conversation(conv, 'burst %d' % i)
                except Exception as e:          # reported below, in the test's thread
                    errors.append(e)
            t = threading.Thread(target=write)
            t.start()
            # close the tabs one by one while the burst is being delivered to them
            keeper.wait_count(20, WAIT)
            for s in leaving:
                s.close()
            t.join(WAIT)
            assert not t.is_alive() and not errors, errors or 'the writer did not finish'
        finally:
            for s in leaving:
                s.close()

        events = keeper.wait_count(RENAMES, WAIT)
        mjs.assert_gapless(events, keeper.start_id + 1, 'the tab that stayed')
        assert events[-1].json['title'] == 'burst %d' % (RENAMES - 1), events[-1]
        for name, pid in pids.items():
            assert mjs.proc_pid(name) == pid, '%s (pid %s) is gone or was restarted: see its log' % (name, pid)
        with mjs.SSE(c) as fresh:
            assert fresh.status == 200
            writer.rename_conversation(conv, 'after')
            assert fresh.wait_count(1, WAIT)[0].json['title'] == 'after'

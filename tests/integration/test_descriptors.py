"""
Descriptors: a responder whose open-files limit leaves fewer descriptors above
1024 (where stream fds live, so libfcgi's select() keeps the low ones) than
max_streams clamps max_streams at start and says so in its log; the streams
past it get a JSON 503 while the REST API goes on answering.
"""

import json
import os

import mjs

CAP = 12


def api_log(n):
    with open(os.path.join(mjs.env()['MJS_STATE_DIR'], 'logs', 'api-%d.log' % n),
              encoding='utf-8', errors='replace') as f:
        return f.read()


@mjs.timeout(120)
def test_a_descriptor_limit_below_max_streams_clamps_it_and_refuses_the_rest_with_503():
    streams = []
    with mjs.Client() as a:
        a.signup()
        try:
            mjs.stack_sh('mjs_stop api-1 api-2')
            limit = 1024 + CAP
            mjs.stack_sh('ulimit -Sn %d && ulimit -Hn %d && mjs_start_api 1' % (limit, limit))
            mjs.wait_until(lambda: 'max_streams clamped to %d' % CAP in api_log(1), 10,
                           'api-1 to log that max_streams was clamped')
            mjs.wait_until(lambda: a.get('/api/me').status == 200, 15, 'the API to answer through api-1')
            for _ in range(CAP):
                s = mjs.SSE(a)
                streams.append(s)
                assert s.status == 200, (s.status, s.body)
            refused = mjs.SSE(a, wait_start=False)
            streams.append(refused)
            refused.wait_closed(10)
            assert refused.status == 503, (refused.status, refused.body)
            assert json.loads(refused.body.decode('utf-8'))['error']['code'] == 'unavailable', refused.body
            assert a.me()['id'] == a.user_id, 'REST stopped answering'
            # the open streams still deliver
            a.create_conversation('still live')
            for s in streams[:CAP]:
                s.wait_for(lambda e: e.event == 'conversation.created', 10)
        finally:
            for s in streams:
                s.close()
            mjs.stack_sh('mjs_stop api-1')
            mjs.start_api(1)
            mjs.start_api(2)
        mjs.wait_until(lambda: a.get('/api/me').status == 200, 15, 'the API to answer after the restart')

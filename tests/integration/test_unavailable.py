"""
When no responder is up, nginx answers, and its answer is still the JSON error
DESIGN.md promises (502/503 with code "unavailable"), for REST and for the
event stream alike. The responders are started again afterwards, and a
client's session survives the outage (sessions live in PostgreSQL) and the
API answers again once nginx's fail_timeout has passed.
"""

from contextlib import ExitStack

import mjs


@mjs.timeout(90)
def test_no_responder_up_is_a_json_503_or_502_and_service_resumes_after():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        try:
            mjs.stack_sh('mjs_stop api-1 api-2')
            assert mjs.proc_pid('api-1') is None and mjs.proc_pid('api-2') is None

            for method, path, body in (('GET', '/api/me', None),
                                       ('POST', '/api/conversations', {'title': 'during the outage'}),
                                       ('GET', '/api/events', None)):
                r = c.request(method, path, body)
                assert r.status in (502, 503), '%s %s with no responder: expected 502/503, got %r' % (
                    method, path, r)
                mjs.assert_error(r, r.status, 'unavailable')
        finally:
            mjs.start_api(1)
            mjs.start_api(2)

        # nginx leaves a failed responder alone for fail_timeout (2 s in nginx/mjs.conf)
        mjs.wait_until(lambda: c.get('/api/me').status == 200, 15, 'the API to answer again after the restart')
        assert c.me()['id'] == c.user_id
        assert mjs.psql_value("SELECT count(*) FROM mjs.conversations c JOIN mjs.users u ON u.id = c.user_id "
                              "WHERE u.id = :'p1'", c.user_id) == '0', 'a write went through during the outage'

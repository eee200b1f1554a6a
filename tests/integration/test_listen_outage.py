"""
A session that ends while the responders' LISTEN connections are down (its
notification goes to nobody) still ends its open streams: when the hub's
connection comes back, it looks up the session of every open stream again.
The other streams catch up on what was written meanwhile and go on live.
"""

import time

import mjs

# Every client backend but this one goes (the hubs' LISTEN connections among
# them), and the session is deleted in the same transaction, committed within
# milliseconds: the hubs reconnect after one second, so its notification is
# delivered to no one.
OUTAGE_AND_REVOKE = """
BEGIN;
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend';
DELETE FROM mjs.sessions WHERE token_hash = sha256(convert_to(:'p1', 'UTF8'));
COMMIT;
"""


@mjs.timeout(90)
def test_a_session_revoked_during_a_listen_outage_ends_its_streams_when_listen_returns():
    with mjs.Client() as a:
        a.signup()
        other = a.another_device()
        doomed = [mjs.SSE(a), mjs.SSE(a.same_session())]
        kept = mjs.SSE(other)
        try:
            t0 = time.monotonic()
            mjs.psql(OUTAGE_AND_REVOKE, a.session)
            for s in doomed:
                assert s.wait_closed(20), 'a stream of the revoked session is still open after 20 s'
            print('revoked streams ended %.1fs after the outage' % (time.monotonic() - t0))
            assert not kept.closed, 'the other session\'s stream was ended: %s' % kept.close_reason
            mjs.wait_until(lambda: other.get('/api/me').status == 200, 15, 'REST to answer after the outage')
            conv = other.create_conversation('after the outage')
            kept.wait_for(lambda e: e.event == 'conversation.created' and e.json['id'] == conv['id'], 20)
            assert a.get('/api/me').status == 401, 'the revoked session still works over REST'
        finally:
            for s in doomed + [kept]:
                s.close()
            other.close()

"""
A session that ends while the responders' LISTEN connections are down (its
notification goes to nobody) still ends its open streams: when the hub's
connection comes back, it looks up the session of every open stream again.
The other streams catch up on what was written meanwhile and go on live.
"""

import os
import socket
import threading
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


class SilentHost:
    """
    A database host that died without closing its sockets, as libpq sees it:
    it accepts TCP connections and never answers (the startup packet waits
    until connect_timeout). Counts the connections it took.
    """

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.accepted = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            self.accepted += 1

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


@mjs.timeout(120)
def test_while_its_listen_reconnects_through_a_silent_host_the_hub_serves_its_streams():
    """
    The database conninfo lists a silent host first (connect_timeout=4): every
    LISTEN reconnect waits 4 s on it before it reaches PostgreSQL. The hub
    must not wait with it: a tab that opens meanwhile is answered at once, and
    every tab gets the events written meanwhile once LISTEN is back.
    """
    silent = SilentHost()
    e = mjs.env()
    dsn = dict(kv.split('=', 1) for kv in e['MJS_DSN'].split())
    conninfo = 'host=127.0.0.1,%s port=%d,%s dbname=%s user=%s connect_timeout=4' % (
        dsn['host'], silent.port, dsn.get('port', '5432'), dsn['dbname'], dsn['user'])
    try:
        with mjs.apis_with(database=conninfo), mjs.Client() as a:
            a.signup()
            cid = a.create_conversation('before')['id']
            first = mjs.SSE(a)
            at = a.me()['event_id']
            try:
                before = silent.accepted
                n = int(mjs.psql_value("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                       "WHERE application_name = 'mjs-api-listen'"))
                assert n == 2, 'expected the two hubs\' LISTEN connections, terminated %d' % n
                mjs.wait_until(lambda: silent.accepted >= before + 2, 10,
                               'both hubs to be connecting through the silent host')
                # opened (status and retry: line) by the hub, which needs no query for it
                t0 = time.monotonic()
                second = mjs.SSE(a.same_session(), last_event_id=at)
                opened = time.monotonic() - t0
                try:
                    assert second.status == 200, (second.status, second.body)
                    assert opened < 1.5, 'a tab took %.2fs to open while the hub was connecting' % opened
                    renamed = a.rename_conversation(cid, 'while LISTEN was down')
                    for s in (first, second):
                        assert s.wait_for(lambda ev: ev.event == 'conversation.updated' and ev.json == renamed, 20), \
                            'the rename did not reach a tab once LISTEN was back'
                finally:
                    second.close()
            finally:
                first.close()
    finally:
        silent.close()

"""
Accounts and sessions: register, login with an HttpOnly SameSite=Lax cookie,
/api/me, logout that really ends the session (and its open streams), and
passwords stored only as hashes.
"""

from contextlib import ExitStack
import re
import secrets

import mjs

WAIT = 20


def session_cookie(client, name='mjs_session'):
    """The attributes of the last session Set-Cookie (of that name) the client received."""
    for h in reversed(client.set_cookies):
        n, value, attrs = mjs.parse_set_cookie(h)
        if n == name:
            return value, attrs, h
    raise AssertionError('no %s Set-Cookie among %r' % (name, client.set_cookies))


@mjs.timeout(60)
def test_healthz_is_ok_without_a_session():
    with mjs.Client() as c:
        r = c.get('/api/healthz', cookie=None, origin_header=None)
        assert r.status == 200 and r.json == {'status': 'ok'}, 'GET /api/healthz: %r' % r


@mjs.timeout(60)
def test_register_login_me_logout_lifecycle():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        username = mjs.unique_username()
        password = 'correct horse battery'

        r = c.register(username, password)
        user = r.expect(201)
        assert set(user) == {'id', 'username', 'created_at'}, 'register returned %r' % user
        assert mjs.is_uuid(user['id']) and user['username'] == username, user
        assert not r.headers.get_all('Set-Cookie'), 'register set a cookie: %r' % r.headers.get_all('Set-Cookie')

        with mjs.unchanged(user['id']):
            for name in (username, username.upper()):
                r = c.register(name, 'another password')
                mjs.assert_error(r, 409, 'conflict')
            for name, pw in ((username, 'wrong password'), (username, password.upper()),
                             (mjs.unique_username(), password), (username, password + ' ')):
                r = c.login(name, pw)
                mjs.assert_error(r, 401, 'invalid_credentials')
                assert not r.headers.get_all('Set-Cookie'), 'failed login set a cookie: %r' % r
            mjs.assert_error(c.get('/api/me'), 401, 'unauthorized')

        r = c.login(username, password)
        assert r.expect(200) == user, 'login returned %r, register %r' % (r.json, user)
        token, attrs, raw = session_cookie(c)
        assert len(token) >= 20, 'session token too short to be unguessable: %r' % raw
        assert attrs.get('httponly') is True, 'session cookie is not HttpOnly: %r' % raw
        assert str(attrs.get('samesite', '')).lower() == 'lax', 'session cookie is not SameSite=Lax: %r' % raw
        assert attrs.get('path', '/') == '/', 'session cookie path: %r' % raw
        hashes = mjs.psql("SELECT encode(token_hash, 'hex') FROM mjs.sessions WHERE user_id = :'p1'", user['id'])
        assert len(hashes) == 1, 'expected one session row, got %r' % hashes
        assert token not in hashes[0][0] and token.encode().hex() not in hashes[0][0], \
            'the session token is stored as it is'

        me = c.me()
        assert me == dict(user, event_seq=0, event_id=me.get('event_id')) and \
            re.fullmatch(r'[1-9][0-9]*\.0', me['event_id']), \
            '/api/me: expected %r with event_seq 0 and event_id EPOCH.0, got %r' % (user, me)

        old_cookie = 'mjs_session=' + c.session
        r = c.post('/api/auth/logout')
        assert r.status in (200, 204), 'logout: expected 204, got %r' % r
        assert c.session is None, 'logout did not clear the cookie: %r' % c.set_cookies[-1:]
        for cookie in (None, old_cookie):
            mjs.assert_error(c.get('/api/me', cookie=cookie), 401, 'unauthorized')
            mjs.assert_error(c.post('/api/conversations', {}, cookie=cookie), 401, 'unauthorized')
        assert mjs.psql_value("SELECT count(*) FROM mjs.sessions WHERE user_id = :'p1'", user['id']) == '0'

        # Logging in again works and is a new session.
        c.login(username, password).expect(200)
        assert c.session != old_cookie.split('=', 1)[1]
        c.me()


@mjs.timeout(60)
def test_password_is_stored_only_as_a_hash():
    with mjs.Client() as c:
        password = 'plain-text-canary-' + mjs.unique_password()
        user = c.register(password=password).expect(201)
        h = mjs.psql_value("SELECT password_hash FROM mjs.users WHERE id = :'p1'", user['id'])
        assert h and h.startswith('$'), 'password_hash is not a crypt(3) hash: %r' % h
        assert password not in h and password.encode().hex() not in h, 'password_hash holds the password'
        found = mjs.psql_value(
            "SELECT count(*) FROM mjs.users u WHERE u.id = :'p1' AND strpos(row_to_json(u)::text, :'p2') > 0",
            user['id'], password)
        assert found == '0', 'the password appears in the users row'
        other = mjs.Client()
        try:
            u2 = other.register(password=password).expect(201)
            h2 = mjs.psql_value("SELECT password_hash FROM mjs.users WHERE id = :'p1'", u2['id'])
            assert h2 != h, 'the same password hashes the same for two users (no salt)'
        finally:
            other.close()


def test_the_database_refuses_a_malformed_username_however_it_is_written():
    """The username rule holds for rows written with psql too (an operator's
    INSERT or UPDATE), while updates that leave the username alone go through."""
    with mjs.Client() as c:
        user = c.register().expect(201)
        for sql in ("INSERT INTO mjs.users (username, password_hash) VALUES ('no spaces allowed', 'x')",
                    "UPDATE mjs.users SET username = 'ab' WHERE id = :'p1'",
                    "UPDATE mjs.users SET username = repeat('a', 33), disabled = false WHERE id = :'p1'"):
            try:
                mjs.psql(sql, user['id'])
            except AssertionError as e:
                assert 'users_username_format' in str(e), 'refused for another reason: %s' % e
            else:
                raise AssertionError('the database accepted: %s' % sql)
        assert mjs.psql_value("SELECT username FROM mjs.users WHERE id = :'p1'", user['id']) == user['username']
        renamed = user['username'][:28] + '.x-_'
        mjs.psql("UPDATE mjs.users SET username = :'p2', event_seq = event_seq WHERE id = :'p1'",
                 user['id'], renamed)
        mjs.psql("UPDATE mjs.users SET disabled = false WHERE id = :'p1'", user['id'])
        assert mjs.psql_value("SELECT username FROM mjs.users WHERE id = :'p1'", user['id']) == renamed


@mjs.timeout(60)
def test_logout_ends_only_that_session_and_its_open_streams():
    with ExitStack() as stack:
        laptop = stack.enter_context(mjs.Client())
        laptop.signup()
        phone = stack.enter_context(laptop.another_device())
        laptop_stream = stack.enter_context(mjs.SSE(laptop))
        phone_stream = stack.enter_context(mjs.SSE(phone))
        assert laptop_stream.status == 200 and phone_stream.status == 200

        r = laptop.post('/api/auth/logout')
        assert r.status in (200, 204), 'logout: %r' % r
        assert laptop_stream.wait_closed(WAIT), 'the logged-out session\'s stream is still open after %ds' % WAIT

        # The other device's session and stream go on.
        conv = phone.create_conversation('after logout')
        ev = phone_stream.wait_count(1, WAIT)[0]
        assert ev.event == 'conversation.created' and ev.json == conv, ev
        assert not phone_stream.closed, phone_stream.close_reason
        with mjs.SSE(None, cookie='mjs_session=' + laptop_stream_token(laptop)) as s:
            assert s.status == 401, 'a stream with the logged-out cookie: expected 401, got %s' % s.status


def laptop_stream_token(client):
    """The session token the client had before logout (the last one it was given)."""
    for h in reversed(client.set_cookies):
        name, value, _ = mjs.parse_set_cookie(h)
        if name == 'mjs_session' and value:
            return value
    raise AssertionError('no session cookie was ever set')


@mjs.timeout(60)
def test_a_stream_ends_when_its_session_expires():
    with ExitStack() as stack:
        laptop = stack.enter_context(mjs.Client())
        laptop.signup()
        phone = stack.enter_context(laptop.another_device())
        token = laptop_stream_token(laptop)
        mjs.psql("UPDATE mjs.sessions SET expires_at = now() + interval '3 seconds' "
                 "WHERE token_hash = sha256(convert_to(:'p1', 'UTF8'))", token)
        laptop_stream = stack.enter_context(mjs.SSE(laptop))
        phone_stream = stack.enter_context(mjs.SSE(phone))
        assert laptop_stream.status == 200 and phone_stream.status == 200
        assert not laptop_stream.closed, laptop_stream.close_reason

        assert laptop_stream.wait_closed(WAIT), 'the expired session\'s stream is still open after %ds' % WAIT
        assert not phone_stream.closed, phone_stream.close_reason
        with mjs.SSE(laptop) as s:
            assert s.status == 401, 'a stream with the expired cookie: expected 401, got %s' % s.status


@mjs.timeout(90)
def test_registration_off_refuses_new_accounts_and_cookie_secure_marks_the_cookie():
    with ExitStack() as stack:
        old = stack.enter_context(mjs.Client())
        username, password = mjs.unique_username(), mjs.unique_password()
        old.register(username, password).expect(201)
        old.login(username, password).expect(200)
        token, attrs, raw = session_cookie(old)
        assert 'secure' not in attrs, 'Secure without cookie_secure: %r' % raw
        with mjs.apis_with(allow_registration='no', cookie_secure='yes'):
            c = stack.enter_context(mjs.Client())
            with mjs.unchanged():
                r = c.register(mjs.unique_username(), mjs.unique_password())
                mjs.assert_error(r, 403, 'registration_disabled')
            assert not c.cookies, 'a refused registration set a cookie: %r' % c.set_cookies
            # existing accounts still log in, and the cookie is Secure now, with the
            # __Host- prefix (the browser keeps it only from a secure origin, Path=/,
            # no Domain), so no other origin can plant a session the server takes
            c.login(username, password).expect(200)
            token, attrs, raw = session_cookie(c, '__Host-mjs_session')
            assert attrs.get('secure') is True, 'cookie_secure = yes but no Secure: %r' % raw
            assert attrs.get('path') == '/' and 'domain' not in attrs, raw
            assert c.me()['username'].lower() == username.lower()
            # the same token under the plain name is not a session on a secure site
            r = c.get('/api/me', cookie='mjs_session=' + token)
            mjs.assert_error(r, 401, 'unauthorized')
            with mjs.SSE(None, cookie='mjs_session=' + token) as s:
                assert s.status == 401, s
            with mjs.SSE(c) as s:
                assert s.status == 200, s
            # logout clears the cookie it set
            c.post('/api/auth/logout').expect(204)
            value, attrs, raw = session_cookie(c, '__Host-mjs_session')
            assert value == '' and attrs.get('max-age') == '0', raw
        # back to the defaults: registration is open again
        with mjs.Client() as c:
            mjs.wait_until(lambda: c.get('/api/healthz').status == 200, 15, 'the API to answer again')
            c.register(mjs.unique_username(), mjs.unique_password()).expect(201)


def test_a_user_agent_that_is_not_utf8_does_not_break_login():
    """The User-Agent is stored with the session as text: bytes that are not UTF-8 are
    replaced and a long one is cut at 200 characters, and the login succeeds."""
    with mjs.Client() as c:
        c.signup()
        c.post('/api/auth/logout').expect(204)
        agent = 'Mozilla/5.0 \xff\xfe\xc0\x80 ' + '\xe5' * 300      # sent as raw bytes (latin-1)
        r = c.login(headers={'User-Agent': agent})
        assert r.status == 200, r
        stored = mjs.psql_value("SELECT user_agent FROM mjs.sessions WHERE user_id = :'p1' "
                                "ORDER BY created_at DESC LIMIT 1", c.user_id)
        assert stored.startswith('Mozilla/5.0 ????') and len(stored) <= 200, repr(stored[:40])
        assert c.me()['id'] == c.user_id


def test_expired_sessions_are_deleted_by_the_worker():
    """The worker deletes expired sessions (at start, then every minute): a session past
    its expiry is gone shortly after a worker starts; a live one stays."""
    with mjs.Client() as c:
        c.signup()
        mjs.psql("""
            INSERT INTO mjs.sessions (token_hash, user_id, expires_at)
            VALUES (sha256(convert_to('expired-test-token', 'UTF8')), :'p1', now() - interval '1 day')""", c.user_id)
        count = "SELECT count(*) FROM mjs.sessions WHERE token_hash = sha256(convert_to('expired-test-token', 'UTF8'))"
        assert mjs.psql_value(count) == '1'
        with mjs.worker_with(log_level='info'):
            mjs.wait_until(lambda: mjs.psql_value(count) == '0', 20, 'the expired session to be deleted')
        assert c.me()['id'] == c.user_id, 'the live session went too'


def counts_of(*user_ids):
    """Conversations, messages and events of these users: what a refused request must leave alone."""
    return mjs.psql("SELECT (SELECT count(*) FROM mjs.conversations WHERE user_id::text = ANY(:'p1'::text[])),"
                    " (SELECT count(*) FROM mjs.messages WHERE user_id::text = ANY(:'p1'::text[])),"
                    " (SELECT count(*) FROM mjs.events WHERE user_id::text = ANY(:'p1'::text[]))",
                    '{%s}' % ','.join(user_ids))


@mjs.timeout(60)
def test_a_cookie_naming_another_user_or_logged_out_writes_nothing_and_is_401():
    """The session check leads each request's own statement in one round trip
    (mjs-api(8)): a cookie whose user part names someone else, or whose session
    ended, gets 401 for reads and writes alike and changes nothing for anybody."""
    with ExitStack() as stack:
        alice = stack.enter_context(mjs.Client())
        alice.signup()
        bob = stack.enter_context(mjs.Client())
        bob.signup()
        conv = bob.create_conversation('bob\'s')
        token = alice.session
        assert token.startswith(alice.user_id + '.'), 'a session token names its user: %r' % token
        secret = token.split('.', 1)[1]
        forged = 'mjs_session=%s.%s' % (bob.user_id, secret)
        ended = stack.enter_context(alice.another_device())
        ended_cookie = 'mjs_session=' + ended.session
        ended.post('/api/auth/logout').expect(204)
        before = counts_of(alice.user_id, bob.user_id)

        for cookie in (forged, ended_cookie):
            for method, path, body in (
                    ('GET', '/api/me', None),
                    ('GET', '/api/models', None),      # answered from memory: still checked
                    ('GET', '/api/conversations', None),
                    ('GET', '/api/conversations/%s/messages' % conv['id'], None),
                    ('POST', '/api/conversations', {'title': 'forged'}),
                    ('PATCH', '/api/conversations/' + conv['id'], {'title': 'forged'}),
                    ('POST', '/api/conversations/%s/messages' % conv['id'], {'content': 'forged'}),
                    ('DELETE', '/api/conversations/' + conv['id'], None),
                    # refused before any statement (a field, the JSON): the session still answers first
                    ('POST', '/api/conversations', {'title': 7}),
                    ('POST', '/api/conversations', None)):
                r = alice.request(method, path, body, cookie=cookie,
                                  raw=b'{' if body is None and method == 'POST' else None)
                mjs.assert_error(r, 401, 'unauthorized')
            with mjs.SSE(None, cookie=cookie) as s:
                assert s.status == 401, 'a stream with %s: %s' % (cookie[:20], s.status)
        assert counts_of(alice.user_id, bob.user_id) == before, 'a refused request changed something'
        assert bob.get('/api/conversations/%s/messages' % conv['id']).expect(200)['items'] == []
        assert [c['title'] for c in bob.get('/api/conversations').expect(200)['items']] == ["bob's"]
        assert alice.get('/api/conversations').expect(200)['items'] == []
        alice.me()


@mjs.timeout(60)
def test_a_session_token_of_the_older_form_still_works():
    """Tokens made before they named their user (the secret alone) stay valid
    until they expire: their check runs before the request's work."""
    with mjs.Client() as c:
        c.signup()
        old = secrets.token_urlsafe(32)
        assert len(old) == 43
        mjs.psql("INSERT INTO mjs.sessions (token_hash, user_id, expires_at) "
                 "VALUES (sha256(convert_to(:'p1', 'UTF8')), :'p2', now() + interval '1 hour')", old, c.user_id)
        cookie = 'mjs_session=' + old
        me = c.get('/api/me', cookie=cookie).expect(200)
        assert me['id'] == c.user_id, me
        conv = c.post('/api/conversations', {'title': 'old token'}, cookie=cookie).expect(201)
        assert conv['title'] == 'old token'
        with mjs.SSE(None, cookie=cookie) as s:
            assert s.status == 200, 'a stream with an older token: %s' % s.status
        c.post('/api/auth/logout', cookie=cookie).expect(204)
        mjs.assert_error(c.get('/api/me', cookie=cookie), 401, 'unauthorized')

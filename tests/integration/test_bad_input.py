"""
Bad input: each rejected request gets the right status and a JSON error body
{"error":{"code","message"}} with the right code, and changes nothing — the
users' rows, conversations and events, and the number of users and sessions
are the same before and after.
"""

import secrets
import uuid
from contextlib import ExitStack

import mjs


def user_with_conversation(stack):
    c = stack.enter_context(mjs.Client())
    c.signup()
    conv = c.create_conversation('keep me')
    return c, conv


def all_rejected(requests, status, code):
    """requests: (label, zero-argument callable returning a Response)."""
    for label, send in requests:
        r = send()
        try:
            mjs.assert_error(r, status, code)
        except AssertionError as e:
            raise AssertionError('%s: %s' % (label, e))


@mjs.timeout(60)
def test_malformed_json_is_400_bad_json_and_changes_nothing():
    with ExitStack() as stack:
        c, conv = user_with_conversation(stack)
        path = '/api/conversations/' + conv['id']
        bodies = [b'{"title": "x"', b'{title: "x"}', b"{'title': 'x'}", b'{"title": "x"} trailing',
                  b'', b' ', b'{"title": "x",}', b'\xef\xbb\xbf{"title": "bom"}']
        with mjs.unchanged(c.user_id):
            for raw in bodies:
                all_rejected([('POST /api/conversations %r' % raw, lambda: c.post('/api/conversations', raw=raw)),
                              ('PATCH %r' % raw, lambda: c.patch(path, raw=raw))], 400, 'bad_json')
            all_rejected([('register with truncated JSON',
                           lambda: c.post('/api/auth/register', raw=b'{"username": "' + mjs.unique_username().encode())),
                          ('login with truncated JSON',
                           lambda: c.post('/api/auth/login', raw=b'{"username": "x", "password": '))],
                         400, 'bad_json')


@mjs.timeout(60)
def test_body_that_is_not_utf8_is_rejected_and_never_a_server_error():
    with ExitStack() as stack:
        c, conv = user_with_conversation(stack)
        # Malformed JSON (RFC 8259 says UTF-8) or an invalid field; never a 500, never a row.
        # Overlong forms, code points above U+10FFFF and encoded UTF-16 surrogates
        # (\xed\xa0\x80, CESU-8) are not UTF-8 either.
        with mjs.unchanged(c.user_id):
            for raw in (b'{"title": "\xff\xfe bad"}', b'{"title": "\xc3"}', b'{"title": "over\xc0\xaflong"}',
                        b'{"title": "\xf4\x90\x80\x80 too big"}', b'{"title": "\xed\xa0\x80"}'):
                r = c.post('/api/conversations', raw=raw)
                assert r.status in (400, 422), 'POST /api/conversations %r: expected 400 or 422, got %r' % (raw, r)
                mjs.assert_error(r, r.status, 'bad_json' if r.status == 400 else 'invalid_field')
        # A lone surrogate escape: stored as something valid, or rejected, never a server error.
        r = c.post('/api/conversations', raw=b'{"title": "half \\ud800 pair"}')
        assert r.status in (201, 400, 422), 'POST {"title": "\\ud800"}: expected 201, 400 or 422, got %r' % r


@mjs.timeout(60)
def test_json_body_that_is_not_an_object_is_400_bad_json():
    with ExitStack() as stack:
        c, conv = user_with_conversation(stack)
        path = '/api/conversations/' + conv['id']
        with mjs.unchanged(c.user_id):
            for raw in (b'[]', b'[{"title": "x"}]', b'"title"', b'5', b'null', b'true'):
                all_rejected([('POST /api/conversations %r' % raw, lambda: c.post('/api/conversations', raw=raw)),
                              ('PATCH %r' % raw, lambda: c.patch(path, raw=raw)),
                              ('register %r' % raw, lambda: c.post('/api/auth/register', raw=raw))],
                             400, 'bad_json')


@mjs.timeout(60)
def test_fields_of_the_wrong_type_are_422_invalid_field():
    with ExitStack() as stack:
        c, conv = user_with_conversation(stack)
        path = '/api/conversations/' + conv['id']
        with mjs.unchanged(c.user_id):
            for title in (5, 1.5, True, ['x'], {'x': 'y'}):
                body = {'title': title}
                all_rejected([('POST %r' % body, lambda: c.post('/api/conversations', body)),
                              ('PATCH %r' % body, lambda: c.patch(path, body))], 422, 'invalid_field')
            all_rejected([('PATCH without title', lambda: c.patch(path, {})),
                          ('PATCH with title null', lambda: c.patch(path, {'title': None})),
                          ('register with a numeric username',
                           lambda: c.post('/api/auth/register', {'username': 12345, 'password': 'long enough'})),
                          ('register with a numeric password',
                           lambda: c.post('/api/auth/register', {'username': mjs.unique_username(),
                                                                 'password': 123456789})),
                          ('login with a list password',
                           lambda: c.post('/api/auth/login', {'username': c.username, 'password': [c.password]}))],
                         422, 'invalid_field')


@mjs.timeout(60)
def test_bad_titles_are_422_invalid_field():
    with ExitStack() as stack:
        c, conv = user_with_conversation(stack)
        path = '/api/conversations/' + conv['id']
        titles = ['x' * 201, '\u00e9' * 201, '\U0001F600' * 201, '', '   ', ' \t ', 'a\nb', 'a\rb',
                  'tab\there', 'nul\x00here', 'del\x7fhere', 'esc\x1b[31m']
        with mjs.unchanged(c.user_id):
            for title in titles:
                body = {'title': title}
                all_rejected([('POST %s' % mjs.short(body, 60), lambda: c.post('/api/conversations', body)),
                              ('PATCH %s' % mjs.short(body, 60), lambda: c.patch(path, body))],
                             422, 'invalid_field')
        # The limits are characters, after trimming.
        for title in ('\U0001F600' * 200, '  ' + 'y' * 200 + '  '):
            made = c.create_conversation(title)
            assert made['title'] == title.strip(), 'title %s stored as %s' % (mjs.short(title), mjs.short(made['title']))


@mjs.timeout(60)
def test_bad_registrations_are_422_and_create_no_user():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        ok_password = 'long enough pw'
        bodies = [
            {'username': '', 'password': ok_password},
            {'username': 'ab', 'password': ok_password},
            {'username': 'a' * 33, 'password': ok_password},
            {'username': 'has space', 'password': ok_password},
            {'username': 'sl/ash', 'password': ok_password},
            {'username': 'us\u00e9r', 'password': ok_password},
            {'username': 'nl\nname', 'password': ok_password},
            {'password': ok_password},
            {'username': mjs.unique_username()},
            {'username': mjs.unique_username(), 'password': ''},
            {'username': mjs.unique_username(), 'password': '1234567'},
            {'username': mjs.unique_username(), 'password': 'p' * 257},
            {},
        ]
        with mjs.unchanged():
            for body in bodies:
                r = c.post('/api/auth/register', body)
                try:
                    mjs.assert_error(r, 422, 'invalid_field')
                except AssertionError as e:
                    raise AssertionError('register %s: %s' % (mjs.short(body, 80), e))
                assert not c.cookies, 'a rejected registration set a cookie: %r' % c.set_cookies
        # The boundaries are accepted: 3 and 32 characters, 8 and 256 bytes.
        for username, password in (('u' + secrets.token_hex(1), 'p' * 8),
                                   (mjs.unique_username('m_') + 'x' * 18, 'p' * 256)):
            assert len(username) in (3, 32), username
            r = c.post('/api/auth/register', {'username': username, 'password': password})
            if r.status == 409 and len(username) == 3:
                continue        # a 3-character name another run took
            r.expect(201)


@mjs.timeout(30)
def test_password_longer_than_256_bytes_is_422_even_when_shorter_in_characters():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        with mjs.unchanged():
            r = c.post('/api/auth/register', {'username': mjs.unique_username(), 'password': '\u00e9' * 129})
            mjs.assert_error(r, 422, 'invalid_field')


@mjs.timeout(60)
def test_body_over_1_mib_is_413_too_large_json():
    with ExitStack() as stack:
        c, conv = user_with_conversation(stack)
        huge = b'{"title": "' + b'a' * (2 << 20) + b'"}'
        with mjs.unchanged(c.user_id):
            all_rejected([('POST /api/conversations 2 MiB', lambda: c.post('/api/conversations', raw=huge)),
                          ('PATCH 2 MiB', lambda: c.patch('/api/conversations/' + conv['id'], raw=huge)),
                          ('register 2 MiB', lambda: c.post('/api/auth/register', raw=huge))],
                         413, 'too_large')
        # The session still works afterwards, on whatever connection.
        c.me()


@mjs.timeout(60)
def test_missing_session_cookie_is_401_unauthorized():
    with ExitStack() as stack:
        owner, conv = user_with_conversation(stack)
        anon = stack.enter_context(mjs.Client())
        path = '/api/conversations/' + conv['id']
        with mjs.unchanged(owner.user_id):
            all_rejected([('GET /api/me', lambda: anon.get('/api/me')),
                          ('GET /api/conversations', lambda: anon.get('/api/conversations')),
                          ('POST /api/conversations', lambda: anon.post('/api/conversations', {'title': 'x'})),
                          ('PATCH', lambda: anon.patch(path, {'title': 'stolen'})),
                          ('DELETE', lambda: anon.delete(path)),
                          ('GET /api/me with only another cookie',
                           lambda: anon.get('/api/me', cookie='other=1; mjs_sessionx=' + owner.session))],
                         401, 'unauthorized')
            with mjs.SSE(None) as s:
                assert s.status == 401 and s.json and s.json.get('error', {}).get('code') == 'unauthorized', \
                    'GET /api/events without a cookie: expected 401 unauthorized, got %s %r' % (s.status, s.body)


@mjs.timeout(60)
def test_garbage_session_cookie_is_401_unauthorized():
    with ExitStack() as stack:
        owner, conv = user_with_conversation(stack)
        anon = stack.enter_context(mjs.Client())
        path = '/api/conversations/' + conv['id']
        cookies = ['mjs_session=garbage', 'mjs_session=' + secrets.token_urlsafe(32), 'mjs_session=',
                   'mjs_session=' + 'A' * 4000, 'mjs_session=%00%ff', 'mjs_session="quoted"',
                   'mjs_session=' + owner.session[:-1] + ('A' if owner.session[-1] != 'A' else 'B')]
        with mjs.unchanged(owner.user_id):
            for cookie in cookies:
                label = 'Cookie: %s' % mjs.short(cookie, 40)
                all_rejected([(label + ' GET /api/me', lambda: anon.get('/api/me', cookie=cookie)),
                              (label + ' POST', lambda: anon.post('/api/conversations', {'title': 'x'}, cookie=cookie)),
                              (label + ' DELETE', lambda: anon.delete(path, cookie=cookie))],
                             401, 'unauthorized')
                with mjs.SSE(None, cookie=cookie) as s:
                    assert s.status == 401 and s.json and s.json.get('error', {}).get('code') == 'unauthorized', \
                        'GET /api/events with %s: expected 401 unauthorized, got %s %r' % (label, s.status, s.body)


@mjs.timeout(60)
def test_another_users_conversation_is_404_for_patch_and_delete():
    with ExitStack() as stack:
        owner, conv = user_with_conversation(stack)
        thief = stack.enter_context(mjs.Client())
        thief.signup()
        path = '/api/conversations/' + conv['id']
        with mjs.unchanged(owner.user_id, thief.user_id):
            all_rejected([('PATCH of another user\'s conversation', lambda: thief.patch(path, {'title': 'mine'})),
                          ('DELETE of another user\'s conversation', lambda: thief.delete(path))],
                         404, 'not_found')
            listed = thief.get('/api/conversations').expect(200)
            assert listed['items'] == [], 'another user\'s conversation is listed: %r' % listed
        owner.rename_conversation(conv['id'], 'still mine')


@mjs.timeout(60)
def test_unknown_or_non_uuid_conversation_id_is_404_not_found():
    with ExitStack() as stack:
        c, conv = user_with_conversation(stack)
        ids = ['123', 'not-a-uuid', conv['id'].replace('-', ''), conv['id'] + 'x', conv['id'][:-1],
               conv['id'][:-1] + 'g', '%s/' % conv['id'], str(uuid.uuid4()), '00000000-0000-0000-0000-000000000000',
               "x'%20OR%20'1'='1"]
        with mjs.unchanged(c.user_id):
            for cid in ids:
                path = '/api/conversations/' + cid
                all_rejected([('PATCH ' + path, lambda: c.patch(path, {'title': 'x'})),
                              ('DELETE ' + path, lambda: c.delete(path))], 404, 'not_found')


@mjs.timeout(30)
def test_unknown_route_is_404_json():
    with ExitStack() as stack:
        c, conv = user_with_conversation(stack)
        with mjs.unchanged(c.user_id):
            all_rejected([('GET /api/nope', lambda: c.get('/api/nope')),
                          ('POST /api/nope', lambda: c.post('/api/nope', {})),
                          ('GET /api/auth/nope', lambda: c.get('/api/auth/nope')),
                          ('GET /api/conversations/{id}/nope', lambda: c.get('/api/conversations/%s/nope' % conv['id'])),
                          ('DELETE /api/conversations/{id}/x/y',
                           lambda: c.delete('/api/conversations/%s/x/y' % conv['id'])),
                          ('GET /api/nope without a session', lambda: c.get('/api/nope', cookie=None))],
                         404, 'not_found')


@mjs.timeout(30)
def test_wrong_method_is_405_with_an_allow_header():
    with ExitStack() as stack:
        c, conv = user_with_conversation(stack)
        cases = [('PUT', '/api/conversations', {'GET', 'POST'}),
                 ('DELETE', '/api/conversations', {'GET', 'POST'}),
                 ('PUT', '/api/conversations/' + conv['id'], {'PATCH', 'DELETE'}),
                 ('GET', '/api/conversations/' + conv['id'], {'PATCH', 'DELETE'}),
                 ('GET', '/api/auth/login', {'POST'}),
                 ('POST', '/api/me', {'GET'}),
                 ('POST', '/api/healthz', {'GET'}),
                 ('POST', '/api/events', {'GET'})]
        with mjs.unchanged(c.user_id):
            for method, path, allowed in cases:
                r = c.request(method, path, {'title': 'x'} if method != 'GET' else None)
                label = '%s %s' % (method, path)
                try:
                    mjs.assert_error(r, 405, 'method_not_allowed')
                except AssertionError as e:
                    raise AssertionError('%s: %s' % (label, e))
                allow = {m.strip() for m in (r.headers.get('Allow') or '').split(',') if m.strip()}
                assert allowed <= allow and method not in allow, \
                    '%s: Allow should list %s, got %r' % (label, sorted(allowed), r.headers.get('Allow'))


@mjs.timeout(60)
def test_state_change_without_a_json_content_type_is_415():
    with ExitStack() as stack:
        c, conv = user_with_conversation(stack)
        path = '/api/conversations/' + conv['id']
        body = b'{"title": "sneaky"}'
        creds = ('{"username": "%s", "password": "long enough pw"}' % mjs.unique_username()).encode()
        types = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x',
                 None, 'application/jsonx', 'text/json', 'application/json-patch+json']
        with mjs.unchanged(c.user_id):
            for ctype in types:
                label = 'Content-Type %r' % ctype
                all_rejected([(label + ' POST', lambda: c.post('/api/conversations', raw=body, content_type=ctype)),
                              (label + ' PATCH', lambda: c.patch(path, raw=body, content_type=ctype)),
                              (label + ' register', lambda: c.post('/api/auth/register', raw=creds, content_type=ctype)),
                              (label + ' login', lambda: c.post('/api/auth/login', raw=creds, content_type=ctype))],
                             415, 'unsupported_media_type')
        # Parameters and case do not matter.
        for ctype in ('application/json; charset=utf-8', 'Application/JSON'):
            r = c.post('/api/conversations', raw=body, content_type=ctype)
            assert r.status == 201, 'Content-Type %r: expected 201, got %r' % (ctype, r)


@mjs.timeout(60)
def test_state_change_from_a_foreign_origin_is_403_forbidden():
    with ExitStack() as stack:
        c, conv = user_with_conversation(stack)
        path = '/api/conversations/' + conv['id']
        scheme, host, port, _ = mjs.url_parts()
        foreign = ['http://evil.example', 'null', '%s://%s:%d' % (scheme, host, port + 1),
                   '%s://%s:%d' % ('https' if scheme == 'http' else 'http', host, port),
                   mjs.origin() + '.evil.example', mjs.origin() + '/']
        with mjs.unchanged(c.user_id):
            for o in foreign:
                label = 'Origin %r' % o
                creds = {'username': mjs.unique_username(), 'password': 'long enough pw'}
                all_rejected([(label + ' POST', lambda: c.post('/api/conversations', {'title': 'x'}, origin_header=o)),
                              (label + ' PATCH', lambda: c.patch(path, {'title': 'x'}, origin_header=o)),
                              (label + ' DELETE', lambda: c.delete(path, origin_header=o)),
                              (label + ' register', lambda: c.post('/api/auth/register', creds, origin_header=o)),
                              (label + ' login', lambda: c.post('/api/auth/login', {
                                  'username': c.username, 'password': c.password}, origin_header=o)),
                              (label + ' logout', lambda: c.post('/api/auth/logout', origin_header=o))],
                             403, 'forbidden')
        c.me()      # the foreign logout did not end the session
        # Without an Origin header (curl, server to server) the request is allowed.
        r = c.post('/api/conversations', {'title': 'from curl'}, origin_header=None)
        assert r.status == 201, 'POST without Origin: expected 201, got %r' % r

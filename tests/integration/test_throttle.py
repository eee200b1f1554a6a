"""
Logins and registrations are throttled. Per username in the database: from
login_failures_free failed logins in a row on (3 here), the name is blocked for
1 s, 2 s, 4 s ...: a login then answers 429 too_many_failures with Retry-After
before any password is checked, whether the name exists or not (the answers
are the same), other names are not affected, and a success resets the count.
Per address in nginx: a flood of auth requests gets 429 too_many_requests as
JSON with Retry-After.
"""

import threading
import time

import mjs


def login(client, username, password):
    return client.post('/api/auth/login', {'username': username, 'password': password})


@mjs.timeout(120)
def test_failed_logins_block_the_name_with_429_for_known_and_unknown_names_alike():
    with mjs.Client() as a, mjs.Client() as b, mjs.Client() as other, \
            mjs.apis_with(login_failures_free='3', login_block_max='4s'):
        a.signup()
        other.signup()
        a.post('/api/auth/logout').expect(204)
        unknown = mjs.unique_username('nobody_')
        for name in (a.username, unknown):
            for i in range(3):
                mjs.assert_error(login(b, name, 'wrong password'), 401, 'invalid_credentials')
            # blocked now: the right password does not help, and the answer says for how long
            r = login(b, name, a.password if name == a.username else 'whatever')
            mjs.assert_error(r, 429, 'too_many_failures')
            retry = int(r.headers.get('Retry-After'))
            assert 1 <= retry <= 4, r.headers.get('Retry-After')
        # other names are not affected
        assert login(b, other.username, other.password).status == 200
        # once the block is over, a success works and resets the count
        mjs.wait_until(lambda: login(a, a.username, a.password).status == 200, 15, 'the block to end')
        assert mjs.psql_value("SELECT count(*) FROM mjs.login_failures WHERE username = lower(:'p1')",
                              a.username) == '0'
        assert a.me()['id'] == a.user_id


@mjs.timeout(120)
def test_a_flood_of_auth_requests_from_one_address_gets_429_json_from_nginx():
    answers = {}
    lock = threading.Lock()
    deadline = time.time() + 30

    def flood():
        with mjs.Client() as c:
            while time.time() < deadline and 429 not in answers:
                r = c.post('/api/auth/logout')
                with lock:
                    answers.setdefault(r.status, r)
    threads = [threading.Thread(target=flood) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert 429 in answers, 'no 429 in 30 s of auth requests: %s' % sorted(answers)
    r = answers[429]
    mjs.assert_error(r, 429, 'too_many_requests')
    assert r.headers.get('Retry-After') == '1', r.headers.get('Retry-After')
    # the limit is per address and lifts again
    with mjs.Client() as c:
        mjs.wait_until(lambda: c.post('/api/auth/logout').status == 204, 20, 'the address limit to lift')

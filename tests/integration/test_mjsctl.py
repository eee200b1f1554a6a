"""
mjsctl against the running stack: the built binary (MJS_BUILD_DIR of the
stack's env file) with the stack's mjs.conf. Each command and its --json form,
bad arguments (exit 2 and a message saying what is wrong), a database that is
down (exit 3), and the effects operators rely on: disabling a user or revoking
a session closes the open streams at once, gen stop stops a running reply,
events prune keeps what streams still need.
"""

import json
import os
import subprocess
import tempfile
import uuid
from contextlib import ExitStack

import mjs

WAIT = 20


def mjsctl(*args, stdin=None, conf=None, timeout=30):
    """Runs mjsctl -c CONF ARGS...; returns (exit status, stdout, stderr)."""
    e = mjs.env()
    exe = os.path.join(e['MJS_BUILD_DIR'], 'mjsctl')
    conf = conf or e.get('MJS_CONF') or os.path.join(e['MJS_STATE_DIR'], 'mjs.conf')
    proc = subprocess.run([exe, '-c', conf] + list(args), input=(stdin or '').encode('utf-8'),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return proc.returncode, proc.stdout.decode('utf-8'), proc.stderr.decode('utf-8')


def ok(*args, **kw):
    """mjsctl that must exit 0; returns stdout."""
    rc, out, err = mjsctl(*args, **kw)
    assert rc == 0, 'mjsctl %s: exit %d, stderr %r, stdout %r' % (' '.join(args), rc, err, out)
    return out


def json_lines(out):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def json_one(*args, **kw):
    rows = json_lines(ok('--json', *args, **kw))
    assert len(rows) == 1, 'mjsctl --json %s: expected one object, got %r' % (' '.join(args), rows)
    return rows[0]


def fails(expect_rc, args, message, **kw):
    """mjsctl that must exit expect_rc saying message (a substring) on stderr, nothing on stdout."""
    rc, out, err = mjsctl(*args, **kw)
    assert rc == expect_rc, 'mjsctl %s: expected exit %d, got %d (stderr %r)' % (' '.join(args), expect_rc, rc, err)
    assert message in err, 'mjsctl %s: expected %r on stderr, got %r' % (' '.join(args), message, err)
    assert out == '', 'mjsctl %s: printed %r on stdout' % (' '.join(args), out)


def user_row(name):
    for row in json_lines(ok('--json', 'user', 'list')):
        if row['username'] == name:
            return row
    return None


@mjs.timeout(60)
def test_migrate_status_and_check_report_an_up_to_date_stack():
    rows = json_lines(ok('--json', 'migrate', '--status'))
    states = [r for r in rows if 'version' in r]
    files = [r for r in rows if 'definition' in r]
    assert states and all(s['state'] == 'applied' for s in states), states
    assert [s['version'] for s in states] == sorted(s['version'] for s in states), states
    assert any(s['name'] == 'baseline' for s in states), states
    assert files and all(f['state'] == 'applied' for f in files), files
    assert {'functions/emit_batch.sql', 'views/queue_depth.sql'} <= {f['definition'] for f in files}, files
    assert len(rows) == len(states) + len(files), rows
    assert 'database is up to date' in ok('migrate')
    report = json_one('check')
    assert report['ok'] is True, report
    names = [c['name'] for c in report['checks']]
    assert names == ['config', 'database', 'migrations', 'definitions', 'upstream:responses', 'upstream:claude',
                     'upstream:gemini', 'upstream:default', 'image_url', 'video_url'], names
    assert all('models listed' in c['detail'] for c in report['checks'] if c['name'].startswith('upstream:')), report
    assert all(c['ok'] for c in report['checks']), report
    text = ok('check')
    assert 'FAIL' not in text and 'migrations' in text, text


@mjs.timeout(60)
def test_check_reports_schema_drift_and_migrate_repairs_it():
    # the same function with another text: what an operator's hand edit looks like
    mjs.psql("CREATE OR REPLACE FUNCTION mjs.rfc3339(t timestamptz) RETURNS text "
             "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS "
             "$$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') -- by hand $$")
    mjs.psql("CREATE FUNCTION mjs.made_by_hand() RETURNS integer LANGUAGE sql AS 'SELECT 1'")
    try:
        rc, out, err = mjsctl('--json', 'check')
        assert rc == 1, (rc, out, err)
        bad = [c for c in json.loads(out)['checks'] if not c['ok']]
        assert [c['name'] for c in bad] == ['definitions'] and 'drift' in bad[0]['detail'], bad
        drift = {r['object']: r['drift'] for r in json_lines(ok('--json', 'migrate', '--status')) if 'drift' in r}
        assert drift == {'function made_by_hand()': 'unknown', 'function rfc3339(t timestamp with time zone)': 'changed'}, drift
        rc, out, err = mjsctl('migrate')
        assert rc == 0, (rc, out, err)
        assert 'applied sql/functions/rfc3339.sql' in out and 'made_by_hand' in err, (out, err)
        assert '-- by hand' not in mjs.psql_value("SELECT prosrc FROM pg_proc WHERE oid = 'mjs.rfc3339(timestamptz)'::regprocedure")
        rc, out, err = mjsctl('--json', 'check')
        bad = [c for c in json.loads(out)['checks'] if not c['ok']]
        assert rc == 1, (rc, out, err)
        assert len(bad) == 1 and 'made_by_hand() is defined by no file' in bad[0]['detail'], bad
    finally:
        mjs.psql("DROP FUNCTION IF EXISTS mjs.made_by_hand()")
    assert json_one('check')['ok'] is True
    assert 'database is up to date' in ok('migrate')


@mjs.timeout(60)
def test_check_fails_when_an_upstream_is_unreachable():
    port = int(mjs.stack_sh('mjs_free_ports 1').strip())
    conf = mjs.stack_conf({'chat_url': 'http://127.0.0.1:%d/v1' % port}, 'mjsctl-test.conf')
    rc, out, err = mjsctl('--json', 'check', conf=conf)
    assert rc == 1, 'check with a dead chat_url: exit %d, %r %r' % (rc, out, err)
    report = json.loads(out)
    bad = [c for c in report['checks'] if not c['ok']]
    assert report['ok'] is False and [c['name'] for c in bad] == ['upstream:default'], report
    assert 'unreachable' in bad[0]['detail'], bad


@mjs.timeout(60)
def test_check_says_which_upstream_refuses_its_key():
    conf = mjs.stack_conf({'upstream.claude.key': '', 'upstream.gemini.key': ''}, 'mjsctl-test.conf')
    rc, out, err = mjsctl('--json', 'check', conf=conf)
    assert rc == 1, (rc, out, err)
    bad = {c['name']: c['detail'] for c in json.loads(out)['checks'] if not c['ok']}
    assert sorted(bad) == ['upstream:claude', 'upstream:gemini'], bad
    assert 'HTTP 401 (the key is refused): x-api-key header is required' in bad['upstream:claude'], bad
    assert 'HTTP 403 (the key is refused)' in bad['upstream:gemini'], bad


@mjs.timeout(90)
def test_user_add_list_passwd_enable_delete():
    name, pw, pw2 = mjs.unique_username(), mjs.unique_password(), mjs.unique_password()
    created = json_one('user', 'add', name, '--password-stdin', stdin=pw + '\n')
    assert mjs.is_uuid(created['id']) and created['username'] == name, created
    fails(1, ['user', 'add', name.upper()], 'already exists', stdin=pw + '\n')
    fails(2, ['user', 'add', mjs.unique_username()], 'password', stdin='short\n')
    row = user_row(name)
    assert row and row['id'] == created['id'] and row['disabled'] is False and row['sessions'] == 0, row
    assert 'username' in ok('user', 'list').splitlines()[0]

    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.login(name, pw).expect(200)
        conv = c.create_conversation('owned by a user about to be deleted')
        assert user_row(name)['sessions'] == 1
        s = stack.enter_context(mjs.SSE(c))
        assert s.status == 200, (s.status, s.body)

        out = ok('user', 'passwd', name, stdin=pw2 + '\n')
        assert 'sessions_ended=1' in out, out
        assert s.wait_closed(WAIT), 'a password change left the stream of the old session open'
        mjs.assert_error(c.login(name, pw), 401, 'invalid_credentials')
        c.login(name, pw2).expect(200)

        fails(1, ['user', 'enable', mjs.unique_username()], 'no such user')
        assert json_one('user', 'enable', name)['disabled'] is False

        deleted = json_one('user', 'delete', name)
        assert deleted == {'username': name, 'id': created['id']}, deleted
        assert user_row(name) is None
        for table, col in (('mjs.sessions', 'user_id'), ('mjs.conversations', 'user_id'),
                           ('mjs.events', 'user_id'), ('mjs.messages', 'user_id')):
            n = mjs.psql_value('SELECT count(*) FROM %s WHERE %s = :\'p1\'' % (table, col), created['id'])
            assert n == '0', '%s still has %s rows of the deleted user' % (table, n)
        mjs.assert_error(c.get('/api/conversations/%s/messages' % conv['id']), 401, 'unauthorized')
        fails(1, ['user', 'delete', name], 'no such user')


@mjs.timeout(60)
def test_user_disable_closes_that_users_streams_and_blocks_login():
    with ExitStack() as stack:
        laptop = stack.enter_context(mjs.Client())
        laptop.signup()
        phone = stack.enter_context(laptop.another_device())
        other = stack.enter_context(mjs.Client())
        other.signup()
        streams = [stack.enter_context(mjs.SSE(x)) for x in (laptop, phone, laptop.same_session())]
        other_stream = stack.enter_context(mjs.SSE(other))
        assert all(s.status == 200 for s in streams + [other_stream])

        res = json_one('user', 'disable', laptop.username)
        assert res['disabled'] is True and res['sessions_ended'] == 2 and res['id'] == laptop.user_id, res
        for i, s in enumerate(streams):
            assert s.wait_closed(WAIT), 'stream %d of the disabled user is still open after %ds' % (i, WAIT)
        mjs.assert_error(laptop.login(), 401, 'invalid_credentials')
        mjs.assert_error(phone.get('/api/me'), 401, 'unauthorized')
        assert user_row(laptop.username)['disabled'] is True

        # the other user's stream was not touched
        conv = other.create_conversation('still here')
        ev = other_stream.wait_for(lambda e: e.event == 'conversation.created', WAIT)
        assert ev.json == conv and not other_stream.closed

        assert json_one('user', 'enable', laptop.username)['disabled'] is False
        laptop.login().expect(200)
        fails(1, ['user', 'disable', mjs.unique_username()], 'no such user')


@mjs.timeout(60)
def test_session_list_and_revoke_close_the_sessions_streams():
    with ExitStack() as stack:
        laptop = stack.enter_context(mjs.Client())
        laptop.signup()
        phone = stack.enter_context(laptop.another_device())
        laptop_stream = stack.enter_context(mjs.SSE(laptop))
        phone_stream = stack.enter_context(mjs.SSE(phone))

        sessions = json_lines(ok('--json', 'session', 'list', laptop.username))
        assert len(sessions) == 2 and all(s['username'] == laptop.username for s in sessions), sessions
        assert set(sessions[0]) == {'id', 'username', 'created_at', 'last_seen_at', 'expires_at',
                                    'remote_addr', 'user_agent'}, sessions[0]
        ids = [s['id'] for s in sessions]
        everyone = {s['id'] for s in json_lines(ok('--json', 'session', 'list'))}
        assert set(ids) <= everyone
        fails(1, ['session', 'list', mjs.unique_username()], 'no such user')

        # which session is the laptop's: revoke one, see whose stream ends
        assert json_one('session', 'revoke', str(ids[0])) == {'revoked': 1}
        closed = mjs.wait_until(lambda: [s for s in (laptop_stream, phone_stream) if s.closed], WAIT,
                                'one stream to close after session revoke')
        assert len(closed) == 1, 'revoking one session closed %d streams' % len(closed)
        survivor = phone if closed[0] is laptop_stream else laptop
        survivor_stream = phone_stream if survivor is phone else laptop_stream
        conv = survivor.create_conversation('other session still works')
        assert survivor_stream.wait_for(lambda e: e.event == 'conversation.created', WAIT).json == conv
        fails(1, ['session', 'revoke', str(ids[0])], 'no such session')

        assert json_one('session', 'revoke', '--user', laptop.username) == {'revoked': 1}
        assert survivor_stream.wait_closed(WAIT), 'revoke --user left the stream open'
        mjs.assert_error(survivor.get('/api/me'), 401, 'unauthorized')
        assert json_lines(ok('--json', 'session', 'list', laptop.username)) == []

        # --all: everybody logs in again (tests run one at a time, so this only hits ours)
        again = stack.enter_context(laptop.another_device())
        again_stream = stack.enter_context(mjs.SSE(again))
        assert 'revoked' in ok('session', 'revoke', '--all')
        assert again_stream.wait_closed(WAIT), 'revoke --all left a stream open'
        assert mjs.psql_value('SELECT count(*) FROM mjs.sessions') == '0'


@mjs.timeout(90)
def test_gen_list_and_gen_stop_a_running_reply():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        s = stack.enter_context(mjs.SSE(c))
        conv = c.create_conversation('stop from the shell')
        sent = mjs.send_message(c, conv['id'], 'go on', 'fake:tps=20:tokens=400')
        mid = sent['assistant_message']['id']
        mjs.wait_status_event(s, mid, 'streaming', WAIT)

        def listed():
            rows = [r for r in json_lines(ok('--json', 'gen', 'list')) if r['id'] == mid]
            return rows[0] if rows and rows[0]['tokens'] > 0 else None
        row = mjs.wait_until(listed, WAIT, 'gen list to show the running reply with tokens')
        assert row['state'] == 'running' and row['status'] == 'streaming' and row['worker'], row
        assert row['username'] == c.username and row['chars'] is None and row['age_s'] >= 0, row
        assert mid in ok('gen', 'list')

        res = json_one('gen', 'stop', mid)
        assert res == {'id': mid, 'outcome': 'stopping', 'status': 'streaming'}, res
        mjs.wait_status_event(s, mid, 'stopped', 10)
        final = mjs.wait_final(c, conv['id'], mid, 10)
        assert final['status'] == 'stopped' and 0 < len(final['content']) < len(mjs.fake_tokens(400)), final

        done = mjs.wait_until(lambda: [r for r in json_lines(ok('--json', 'gen', 'list', '--all', '--limit', '1000'))
                                       if r['id'] == mid and r['state'] == 'done'], WAIT, 'the stopped reply as done')
        assert done[0]['status'] == 'stopped' and done[0]['chars'] == len(final['content']), done
        fails(1, ['gen', 'stop', mid], 'already finished')
        fails(1, ['gen', 'stop', str(uuid.uuid4())], 'no such generation')


@mjs.timeout(90)
def test_events_prune_keeps_recent_events_and_each_users_last_n():
    # prune counts every user's events: what earlier tests aged (on a stack used
    # for more than one run, too) goes first
    ok('events', 'prune', '--older-than', '1h', '--keep', '3')
    with ExitStack() as stack:
        old = stack.enter_context(mjs.Client())
        old.signup()
        changes = mjs.Changes(old, 'prune')
        changes.mixed(10)
        recent = stack.enter_context(mjs.Client())
        recent.signup()
        mjs.Changes(recent, 'recent').mixed(4)
        assert mjs.db_event_seq(old.user_id) == 10
        mjs.psql("UPDATE mjs.events SET created_at = now() - interval '2 days' WHERE user_id = :'p1'",
                 old.user_id)

        res = json_one('events', 'prune', '--older-than', '1d', '--keep', '3')
        assert res['deleted'] >= 7 and res['keep'] == 3 and res['older_than_s'] == 86400, res
        assert [e['seq'] for e in mjs.db_events(old.user_id)] == [8, 9, 10]
        assert [e['seq'] for e in mjs.db_events(recent.user_id)] == [1, 2, 3, 4], 'recent events were pruned'
        # nothing more is old enough, and the last N stay however old they are
        assert json_one('events', 'prune', '--older-than', '1d', '--keep', '3')['deleted'] == 0
        assert 'deleted 0 events' in ok('events', 'prune', '--older-than', '1h', '--keep', '3')
        assert [e['seq'] for e in mjs.db_events(old.user_id)] == [8, 9, 10]

        # a tab behind the kept history gets reset; one within it replays
        behind = stack.enter_context(mjs.SSE(old, last_event_id=2))
        first = behind.wait_count(1, WAIT)[0]
        assert first.event == 'reset' and first.json['seq'] == 10 and first.json['reason'] == 'pruned', first
        within = stack.enter_context(mjs.SSE(old, last_event_id=7))
        got = within.wait_count(3, WAIT)
        mjs.assert_events_match(got, changes.expected[7:], 8, 'replay after prune')


@mjs.timeout(60)
def test_stats_reports_users_streams_per_responder_generations_and_events():
    with ExitStack() as stack:
        c = stack.enter_context(mjs.Client())
        c.signup()
        streams = [stack.enter_context(mjs.SSE(c)) for _ in range(3)]
        assert all(s.status == 200 for s in streams)

        def counted():
            st = json_one('stats')
            return st if st['open_streams'] >= 3 else None
        st = mjs.wait_until(counted, 20, 'stats to count 3 open streams (heartbeat every 5 s)', interval=0.5)
        assert st['users']['total'] >= 1 and st['sessions'] >= 1, st
        names = [r['name'] for r in st['responders']]
        assert len(names) >= 2 and sum(r['streams'] for r in st['responders']) == st['open_streams'], st
        assert all(r['listen'].endswith('.sock') for r in st['responders']), st
        gens = st['generations']
        assert {'queued', 'running', 'expired_leases', 'by_status'} <= set(gens), gens
        assert isinstance(st['queue_depth'], int) and st['events']['bytes'] > 0, st
        text = ok('stats')
        for word in ('users', 'open streams', 'generations', 'queue depth', 'events'):
            assert word in text, 'stats text lacks %r: %s' % (word, text)
        view = mjs.psql_value('SELECT sum(streams) FROM mjs.open_streams WHERE alive')
        assert view is not None and int(view) >= 3, view


@mjs.timeout(60)
def test_operator_views_answer():
    for view in ('active_generations', 'stuck_generations', 'queue_depth', 'recent_failures',
                 'open_streams', 'events_backlog'):
        mjs.psql('SELECT * FROM mjs.%s LIMIT 5' % view)
        comment = mjs.psql_value("SELECT obj_description(:'p1'::regclass, 'pg_class')", 'mjs.' + view)
        assert comment, 'view mjs.%s has no COMMENT' % view
    assert len(mjs.psql('SELECT * FROM mjs.queue_depth')) == 1


@mjs.timeout(60)
def test_bad_arguments_exit_2_with_a_clear_message():
    cases = [
        ([], 'no command given'),
        (['frobnicate'], 'unknown command "frobnicate"'),
        (['user'], '"user" needs a subcommand'),
        (['user', 'frob'], 'unknown command "user frob"'),
        (['user', 'add'], '"user add" takes NAME'),
        (['user', 'add', 'x'], 'bad user name "x"'),
        (['user', 'list', 'extra'], '"user list" takes no arguments'),
        (['user', 'disable', 'a b'], 'bad user name'),
        (['session', 'revoke'], 'exactly one of ID, --user USER or --all'),
        (['session', 'revoke', '1', '--all'], 'exactly one of'),
        (['session', 'revoke', 'abc'], 'bad session id "abc"'),
        (['session', 'revoke', '--user'], 'option --user needs a value'),
        (['gen', 'stop', 'not-a-uuid'], 'bad generation id'),
        (['gen', 'stop'], '"gen stop" takes ID'),
        (['gen', 'list', '--limit', '0'], 'bad --limit "0"'),
        (['gen', 'list', '--older-than', '1d'], 'option --older-than does not apply to "gen list"'),
        (['events', 'prune'], 'needs --older-than'),
        (['events', 'prune', '--older-than', 'soon'], 'bad --older-than "soon"'),
        (['events', 'prune', '--older-than', '10s'], 'at least 1m'),
        (['events', 'prune', '--older-than', '1d', '--keep', '-1'], 'bad --keep'),
        (['stats', '--bogus'], 'unknown option "--bogus"'),
        (['migrate', '--status=yes'], 'option --status takes no value'),
    ]
    for args, message in cases:
        fails(2, args, message, stdin='')
    rc, _, err = mjsctl('--bogus', 'stats')
    assert rc == 2 and 'usage' in err, (rc, err)
    rc, out, _ = mjsctl('--help')
    assert rc == 0 and 'events' in out and 'prune' in out, out
    with tempfile.NamedTemporaryFile('w', suffix='.conf') as f:
        f.write('no_such_key = 1\n')
        f.flush()
        fails(2, ['stats'], 'unknown key "no_such_key"', conf=f.name)


@mjs.timeout(60)
def test_database_down_is_exit_3_with_a_clear_message():
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, 'down.conf')
        with open(conf, 'w') as f:
            f.write('database = host=%s/no-such-socket-dir dbname=mjs user=mjs connect_timeout=3\n' % d)
        for args in (['stats'], ['user', 'list'], ['migrate', '--status'], ['gen', 'list'],
                     ['session', 'revoke', '--all'], ['events', 'prune', '--older-than', '7d']):
            fails(3, args, 'cannot connect to the database', conf=conf)
        rc, out, err = mjsctl('--json', 'check', conf=conf)
        assert rc == 3, 'check with the database down: exit %d (%r)' % (rc, err)
        report = json.loads(out)
        assert report['ok'] is False and report['checks'][-1]['name'] == 'database', report
        assert 'cannot connect' in report['checks'][-1]['detail'], report


@mjs.timeout(120)
def test_a_migration_that_changes_what_a_read_returns_needs_no_restart():
    """mjs-api keeps each statement prepared on its pooled connections
    (mjs-api(8)). A migration that changes a function's result type makes
    PostgreSQL refuse the plans prepared before it ("cached plan must not change
    result type"); the responders prepare them anew and the API goes on
    answering, with no restart, before and after mjsctl migrate puts the file's
    definition back."""
    sig = 'mjs.conversation_page(uuid, bigint, uuid, integer)'
    with mjs.Client() as c:
        c.signup()
        c.create_conversation('before the migration')

        def reads(what):
            # enough reads that every pooled connection of both responders serves some
            for i in range(80):
                r = c.get('/api/conversations')
                assert r.status == 200, '%s, read %d: %r' % (what, i, r)
                assert [x['title'] for x in r.json['items']] == ['before the migration'], r.json

        reads('before')
        body = mjs.psql_value("SELECT pg_get_functiondef(:'p1'::regprocedure)", sig)
        changed = body.replace('r_obj text', 'r_obj json').replace(
            'mjs.conversation_json(c)::text AS obj', 'mjs.conversation_json(c) AS obj')
        assert changed.count('r_obj json') == 1 and 'conversation_json(c)::text' not in changed, changed
        try:
            mjs.psql('DROP FUNCTION %s' % sig)
            mjs.psql(changed)
            reads('after the result type changed')
        finally:
            mjs.psql('DROP FUNCTION IF EXISTS %s' % sig)
            out = ok('migrate')
            assert 'conversation_page' in out, out
        reads('after mjsctl migrate restored it')
        assert json_one('check')['ok'] is True

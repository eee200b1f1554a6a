"""
mjsctl setup, the first run (mjsctl(8)): it writes a starting mjs.conf (0640,
a fresh password for the role, never shown), creates the role and the
database as a PostgreSQL superuser (--admin), applies the migrations as the
role so it owns them, and says what to do next; run again it keeps the file
and changes nothing; without the rights it prints the commands to run. Against
the stack's cluster (superuser mjs, trust on its socket), with names of its own.
"""

import os
import secrets
import stat
import subprocess

import mjs


def socket_conninfo():
    e = mjs.env()
    return 'host=%s port=%s' % (os.path.join(e['MJS_STATE_DIR'], 'sock'), e.get('MJS_PG_PORT') or '5432')


def setup(conf, *args):
    e = mjs.env()
    p = subprocess.run([os.path.join(e['MJS_BUILD_DIR'], 'mjsctl'), '-c', conf, 'setup'] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')


def admin_sql(sql, *params):
    return mjs.psql(sql, *params)


@mjs.timeout(120)
def test_setup_makes_the_role_database_schema_and_config_and_runs_again_unchanged():
    name = 'mjs_setup_' + secrets.token_hex(3)
    conf = os.path.join(mjs.env()['MJS_STATE_DIR'], name + '.conf')
    sock = socket_conninfo()
    try:
        rc, out, err = setup(conf, '--database', '%s dbname=%s user=%s' % (sock, name, name),
                             '--admin', '%s dbname=postgres user=mjs' % sock)
        assert rc == 0, (out, err)
        assert 'created role %s' % name in out and 'created database %s' % name in out, out
        assert 'applied 001_baseline' in out and 'applied sql/functions/emit_batch.sql' in out, out
        assert 'mjs-production.conf' in out and 'systemctl enable --now' in out, out
        st = os.stat(conf)
        assert stat.S_IMODE(st.st_mode) == 0o640, oct(st.st_mode)
        text = open(conf, encoding='utf-8').read()
        line = next(l for l in text.splitlines() if l.startswith('database = '))
        assert 'user=%s' % name in line and "password='" in line, line
        password = line.split("password='")[1].rstrip("'")
        assert len(password) >= 32 and password not in out + err, 'the password was shown'
        # the role owns the schema: the programs run as it
        owner = subprocess.run(['psql', '-XAtq', '-d', '%s dbname=%s user=%s' % (sock, name, name), '-c',
                                "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'mjs'"],
                               stdout=subprocess.PIPE, timeout=30).stdout.decode().strip()
        assert owner == name, owner
        # run again: the file is kept, nothing is created, the schema is current
        before = open(conf, encoding='utf-8').read()
        rc, out, err = setup(conf, '--admin', '%s dbname=postgres user=mjs' % sock)
        assert rc == 0, (out, err)
        assert 'kept as it is' in out and 'created' not in out and 'up to date' in out, out
        assert open(conf, encoding='utf-8').read() == before
        # --database for a file that exists is refused
        rc, out, err = setup(conf, '--database', 'dbname=other')
        assert rc == 2 and 'exists' in err, (rc, out, err)
    finally:
        admin_sql('DROP DATABASE IF EXISTS %s' % name)
        admin_sql('DROP ROLE IF EXISTS %s' % name)
        if os.path.exists(conf):
            os.unlink(conf)


@mjs.timeout(120)
def test_setup_without_the_rights_says_what_to_run_and_shows_no_password():
    name = 'mjs_setup_' + secrets.token_hex(3)
    helper = 'mjs_setup_' + secrets.token_hex(3)       # a role that may log in but not create roles
    conf = os.path.join(mjs.env()['MJS_STATE_DIR'], name + '.conf')
    sock = socket_conninfo()
    admin_sql('CREATE ROLE %s LOGIN' % helper)
    try:
        rc, out, err = setup(conf, '--database', '%s dbname=%s user=%s' % (sock, name, name),
                             '--admin', '%s dbname=postgres user=%s' % (sock, helper))
        assert rc == 1, (rc, out, err)
        assert 'CREATE ROLE %s LOGIN' % name in err and 'createdb -O %s %s' % (name, name) in err, err
        password = open(conf, encoding='utf-8').read().split("password='")[1].split("'")[0]
        assert password not in out + err and 'password=***' in err, err
        assert mjs.psql_value("SELECT count(*) FROM pg_roles WHERE rolname = :'p1'", name) == '0'
    finally:
        admin_sql('DROP ROLE IF EXISTS %s' % helper)
        if os.path.exists(conf):
            os.unlink(conf)

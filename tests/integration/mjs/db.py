"""
db: psql against the stack's database, with parameters passed as psql
variables (never formatted into SQL), and snapshots of a user's rows.
"""


import codecs
import http.client
import json
import os
import secrets
import shlex
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from .base import *  # noqa: F401,F403


# ---------------------------------------------------------------------------
# psql
# ---------------------------------------------------------------------------

def psql(sql, *params, timeout=30):
    """
    Runs sql with psql against MJS_DSN and returns the rows as lists of
    strings (NULL as None). Parameters are passed as psql variables p1, p2, ...:
    write them as :'p1' (a literal) in the SQL. The script is read from stdin
    so psql interpolates the variables; ON_ERROR_STOP makes an error fail.
    """
    args = ['psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
            '-F', '\x1f', '-R', '\x1e', '-P', 'null=\x1d', '-d', env()['MJS_DSN']]
    for i, p in enumerate(params, 1):
        value = p if isinstance(p, str) else json.dumps(p) if isinstance(p, (dict, list)) else str(p)
        if '\0' in value:
            raise ValueError('psql parameters cannot hold NUL')
        args += ['-v', 'p%d=%s' % (i, value)]
    proc = subprocess.run(args, input=sql.encode('utf-8'), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError('psql failed (%d): %s\nSQL: %s' % (
            proc.returncode, proc.stderr.decode('utf-8', 'replace').strip(), sql.strip()))
    out = proc.stdout.decode('utf-8')
    if out.endswith('\n'):
        out = out[:-1]
    rows = []
    for rec in out.split('\x1e'):
        if rec.startswith('\n'):
            rec = rec[1:]
        if rec == '':
            continue
        rows.append([None if f == '\x1d' else f for f in rec.split('\x1f')])
    return rows


def psql_value(sql, *params):
    """The single value of a one-row, one-column query (None for no row / NULL)."""
    rows = psql(sql, *params)
    if not rows:
        return None
    assert len(rows) == 1 and len(rows[0]) == 1, 'expected one value, got %r' % rows
    return rows[0][0]


def psql_json(sql, *params):
    """Parses the single value of a query that returns one JSON text."""
    v = psql_value(sql, *params)
    return None if v is None else json.loads(v)


def db_events(user_id, after=0):
    """The user's events after seq `after`, as [{"seq","type","data"}] in seq order."""
    return psql_json("""
        SELECT coalesce(json_agg(json_build_object('seq', seq, 'type', type, 'data', data) ORDER BY seq), '[]')
        FROM mjs.events WHERE user_id = :'p1' AND seq > :'p2'::bigint""", user_id, after)


def db_event_seq(user_id):
    v = psql_value("SELECT event_seq FROM mjs.users WHERE id = :'p1'", user_id)
    return None if v is None else int(v)


def snapshot(*user_ids):
    """
    What a rejected request must not change: the number of users and sessions,
    and for each given user its row, conversations and events.
    """
    snap = {'users': psql_value('SELECT count(*) FROM mjs.users'),
            'sessions': psql_value('SELECT count(*) FROM mjs.sessions')}
    for uid in user_ids:
        snap[uid] = psql_json("""
            SELECT json_build_object(
              'user', (SELECT json_build_object('username', username, 'password_hash', password_hash,
                         'event_seq', event_seq, 'disabled', disabled)
                       FROM mjs.users WHERE id = :'p1'),
              'conversations', (SELECT coalesce(json_agg(json_build_object('id', id, 'title', title,
                         'created_at', created_at, 'updated_at', updated_at) ORDER BY id), '[]')
                       FROM mjs.conversations WHERE user_id = :'p1'),
              'events', (SELECT coalesce(json_agg(json_build_object('seq', seq, 'type', type,
                         'data', data::text) ORDER BY seq), '[]')
                       FROM mjs.events WHERE user_id = :'p1'))""", uid)
    return snap


class unchanged:
    """Context manager: asserts snapshot(*user_ids) is the same after the block as before."""

    def __init__(self, *user_ids, what='the database'):
        self.user_ids = user_ids
        self.what = what

    def __enter__(self):
        self.before = snapshot(*self.user_ids)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            return False
        after = snapshot(*self.user_ids)
        if after != self.before:
            diff = {k: (self.before.get(k), after.get(k)) for k in set(self.before) | set(after)
                    if self.before.get(k) != after.get(k)}
            raise AssertionError('%s changed: %s' % (self.what, short(json.dumps(diff), 600)))
        return False

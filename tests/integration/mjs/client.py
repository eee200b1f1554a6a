"""
client: an HTTP client with a cookie jar per "browser" (Client), its answers
(Response) and the assertions on error answers.
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
# HTTP client
# ---------------------------------------------------------------------------

DEFAULT = object()   # "send the usual value" for content_type / origin


class Response:
    """One HTTP response. Unpacks as (status, headers, json-or-None)."""

    def __init__(self, method, path, status, headers, body):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers          # http.client.HTTPMessage: case-insensitive get/get_all
        self.body = body                # bytes
        self.json = None
        if body:
            try:
                self.json = json.loads(body.decode('utf-8'))
            except (UnicodeDecodeError, ValueError):
                self.json = None

    def __iter__(self):
        return iter((self.status, self.headers, self.json))

    def __repr__(self):
        return '%s %s -> %d %s' % (self.method, self.path, self.status,
                                   short(self.body.decode('utf-8', 'replace')))

    def expect(self, status):
        """Asserts the status; returns the parsed JSON body."""
        assert self.status == status, 'expected %d, got %r' % (status, self)
        return self.json

    def error_code(self):
        j = self.json
        if isinstance(j, dict) and isinstance(j.get('error'), dict):
            return j['error'].get('code')
        return None


def assert_error(resp, status, code):
    """Asserts an error response: the status, a JSON content type and {"error":{"code","message"}}."""
    assert resp.status == status, 'expected %d %s, got %r' % (status, code, resp)
    ctype = resp.headers.get('Content-Type', '')
    assert ctype.split(';')[0].strip().lower() == 'application/json', \
        'expected a JSON error body, got Content-Type %r: %r' % (ctype, resp)
    j = resp.json
    assert isinstance(j, dict) and isinstance(j.get('error'), dict), \
        'expected {"error":{...}}, got %r' % resp
    assert j['error'].get('code') == code, 'expected code %r, got %r' % (code, resp)
    msg = j['error'].get('message')
    assert isinstance(msg, str) and msg, 'expected a non-empty error message, got %r' % resp


def parse_set_cookie(header):
    """'name=value; Attr; K=V' -> (name, value, {attr-lower: value-or-True})."""
    parts = [p.strip() for p in header.split(';')]
    name, _, value = parts[0].partition('=')
    attrs = {}
    for p in parts[1:]:
        if not p:
            continue
        k, sep, v = p.partition('=')
        attrs[k.strip().lower()] = v.strip() if sep else True
    return name.strip(), value.strip(), attrs


class Client:
    """
    One "browser": a keep-alive connection to nginx and a cookie jar.
    Sends Content-Type: application/json on requests other than GET/HEAD and
    Origin: <public origin> on every request, unless told otherwise.
    """

    def __init__(self, timeout=30):
        self.timeout = timeout
        self.cookies = {}
        self.set_cookies = []      # every Set-Cookie header received, in order
        self.user = None           # the user object after signup()/login()
        self.username = None
        self.password = None
        self._conn = None
        self._conn_used = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self):
        scheme, host, port, _ = url_parts()
        if scheme == 'https':
            ctx = ssl._create_unverified_context()
            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=ctx)
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def cookie_header(self):
        return '; '.join('%s=%s' % kv for kv in self.cookies.items())

    @property
    def session(self):
        """The session token, from mjs_session or (cookie_secure) __Host-mjs_session."""
        return self.cookies.get('mjs_session') or self.cookies.get('__Host-mjs_session')

    def _store_cookies(self, headers):
        for h in headers.get_all('Set-Cookie') or []:
            self.set_cookies.append(h)
            name, value, attrs = parse_set_cookie(h)
            expired = value == '' or attrs.get('max-age') in ('0',) or \
                (isinstance(attrs.get('max-age'), str) and attrs['max-age'].startswith('-'))
            if expired:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def request(self, method, path, json_body=None, *, raw=None, headers=None,
                content_type=DEFAULT, origin_header=DEFAULT, cookie=DEFAULT):
        """
        Sends one request and returns a Response. json_body is serialized (UTF-8,
        non-ASCII kept); raw sends bytes as they are. content_type / origin_header /
        cookie: DEFAULT for the usual value, None to omit, or a string to send.
        """
        body = raw
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False).encode('utf-8')
        hdrs = {}
        if content_type is DEFAULT:
            if method not in ('GET', 'HEAD'):
                hdrs['Content-Type'] = 'application/json'
        elif content_type is not None:
            hdrs['Content-Type'] = content_type
        if origin_header is DEFAULT:
            hdrs['Origin'] = origin()
        elif origin_header is not None:
            hdrs['Origin'] = origin_header
        if cookie is DEFAULT:
            if self.cookies:
                hdrs['Cookie'] = self.cookie_header()
        elif cookie is not None:
            hdrs['Cookie'] = cookie
        if body is None and method in ('POST', 'PUT', 'PATCH'):
            body = b''
        if headers:
            hdrs.update(headers)

        for attempt in (0, 1):
            if self._conn is None:
                self._conn = self._connect()
                self._conn_used = False
            reused = self._conn_used
            conn = self._conn
            send_error = None
            try:
                try:
                    conn.request(method, path, body=body, headers=hdrs)
                except (BrokenPipeError, ConnectionResetError) as e:
                    # The server may answer (413) before reading the whole body.
                    if reused:
                        raise
                    send_error = e
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError, http.client.BadStatusLine) as e:
                self.close()
                if reused and attempt == 0:
                    continue        # a stale keep-alive connection: retry once on a fresh one
                if send_error is not None:
                    raise send_error
                raise AssertionError('%s %s: connection failed: %r' % (method, path, e))
            self._conn_used = True
            if resp.will_close:
                self.close()
            self._store_cookies(resp.headers)
            return Response(method, path, resp.status, resp.headers, data)

    def get(self, path, **kw):
        return self.request('GET', path, **kw)

    def post(self, path, json_body=None, **kw):
        return self.request('POST', path, json_body, **kw)

    def patch(self, path, json_body=None, **kw):
        return self.request('PATCH', path, json_body, **kw)

    def put(self, path, json_body=None, **kw):
        return self.request('PUT', path, json_body, **kw)

    def delete(self, path, **kw):
        return self.request('DELETE', path, **kw)

    # --- accounts -----------------------------------------------------------

    def register(self, username=None, password=None, **kw):
        self.username = username if username is not None else unique_username()
        self.password = password if password is not None else unique_password()
        return self.post('/api/auth/register', {'username': self.username, 'password': self.password}, **kw)

    def login(self, username=None, password=None, **kw):
        username = self.username if username is None else username
        password = self.password if password is None else password
        r = self.post('/api/auth/login', {'username': username, 'password': password}, **kw)
        if r.status == 200:
            self.username, self.password, self.user = username, password, r.json
        return r

    def signup(self):
        """Registers a fresh user and logs in; returns the user object."""
        self.register().expect(201)
        self.login().expect(200)
        assert self.session, 'login set no mjs_session cookie: %r' % self.set_cookies
        return self.user

    def another_device(self):
        """A new Client logged in (its own session) as the same user."""
        c = Client(self.timeout)
        c.login(self.username, self.password).expect(200)
        return c

    def same_session(self):
        """A new Client (another tab) sharing this one's cookies."""
        c = Client(self.timeout)
        c.cookies = dict(self.cookies)
        c.username, c.password, c.user = self.username, self.password, self.user
        return c

    @property
    def user_id(self):
        return self.user['id']

    def me(self):
        return self.get('/api/me').expect(200)

    # --- conversations --------------------------------------------------------

    def create_conversation(self, title=None):
        body = {} if title is None else {'title': title}
        return self.post('/api/conversations', body).expect(201)

    def rename_conversation(self, cid, title):
        return self.patch('/api/conversations/' + cid, {'title': title}).expect(200)

    def delete_conversation(self, cid):
        self.delete('/api/conversations/' + cid).expect(204)
        return {'id': cid}

"""
replies: what tests do with replies and tasks: send, wait for a status, read
deltas back, create tasks, and the same through the database.
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
from .client import *  # noqa: F401,F403
from .sse import *  # noqa: F401,F403
from .db import *  # noqa: F401,F403


# ---------------------------------------------------------------------------
# AI replies: sending, and reading a reply back from events and REST
# ---------------------------------------------------------------------------

FINAL_STATUSES = ('completed', 'stopped', 'failed')


def send_message(client, cid, content='hello', model=None):
    """POST /api/conversations/{cid}/messages; returns {"user_message", "assistant_message"}."""
    body = {'content': content}
    if model is not None:
        body['model'] = model
    return client.post('/api/conversations/%s/messages' % cid, body).expect(201)


def list_messages(client, cid):
    """Every message of conversation cid, oldest first, following the cursors."""
    items, cursor = [], None
    while True:
        path = '/api/conversations/%s/messages?limit=200' % cid
        page = client.get(path + ('&cursor=' + urllib.parse.quote(cursor) if cursor else '')).expect(200)
        items += page['items']
        if not page['next']:
            return items
        cursor = page['next']


def get_message(client, cid, mid):
    """The message mid as GET /api/conversations/{cid}/messages shows it (AssertionError if absent)."""
    for m in list_messages(client, cid):
        if m['id'] == mid:
            return m
    raise AssertionError('message %s is not in conversation %s' % (mid, cid))


def wait_message(client, cid, mid, pred, timeout, what):
    """Polls REST until pred(message) holds; returns the message."""
    last = []

    def check():
        m = get_message(client, cid, mid)
        last[:] = [m]
        return m if pred(m) else None
    try:
        return wait_until(check, timeout, what, interval=0.05)
    except AssertionError as e:
        raise AssertionError('%s; last seen %s' % (e, short(json.dumps(last[0]) if last else None)))


def wait_final(client, cid, mid, timeout=30):
    """Waits until the message has a final status (REST); returns it."""
    return wait_message(client, cid, mid, lambda m: m['status'] in FINAL_STATUSES, timeout,
                        'message %s to reach a final status' % mid)


def message_events(events, mid):
    """The events (created/updated/delta) about message mid, in the order given."""
    out = []
    for e in events:
        j = e.json if isinstance(e.json, dict) else {}
        if e.event in ('message.created', 'message.updated') and j.get('id') == mid:
            out.append(e)
        elif e.event == 'message.delta' and j.get('message_id') == mid:
            out.append(e)
    return out


def statuses(events, mid):
    """The statuses message mid went through in message.created/updated events, repeats kept."""
    return [e.json['status'] for e in message_events(events, mid) if e.event != 'message.delta']


def deltas(events, mid, part=None):
    """The message.delta events of message mid of one part: the answer (no "part") or "reasoning"."""
    return [e for e in message_events(events, mid) if e.event == 'message.delta' and e.json.get('part') == part]


def concat_deltas(delta_events, start=0, label='deltas'):
    """
    The text of deltas that must follow each other exactly: the first at offset
    start, each next one at the end of the one before (no gap, no duplicate).
    """
    text = ''
    for e in delta_events:
        off = e.json['offset']
        assert off == start + len(text), '%s: delta id %s at offset %d, expected %d (no gap, no dup); offsets %r' % (
            label, e.id, off, start + len(text), [d.json['offset'] for d in delta_events])
        assert e.json['text'], '%s: empty delta id %s' % (label, e.id)
        text += e.json['text']
    return text


def apply_deltas(base, delta_events, label='deltas'):
    """
    What a client does: starts from base (text loaded over REST) and applies each
    delta by its offset, dropping what it already has. A delta past the end (a
    hole) or one that disagrees with the text held fails.
    """
    text = base
    for e in delta_events:
        off, piece = e.json['offset'], e.json['text']
        assert off <= len(text), '%s: hole before delta id %s: offset %d, text has %d chars' % (
            label, e.id, off, len(text))
        held = text[off:off + len(piece)]
        assert piece.startswith(held), '%s: delta id %s at %d says %r, text held there is %r' % (
            label, e.id, off, short(piece, 60), short(held, 60))
        text = text[:off] + piece if off + len(piece) >= len(text) else text
    return text


def assert_gapless(events, first_id, label='stream'):
    ids = [e.id for e in events]
    assert ids == list(range(first_id, first_id + len(ids))), \
        '%s: ids not consecutive from %d (gap or duplicate): %r' % (label, first_id, ids)


def wait_status_event(sse, mid, wanted, timeout=20):
    """Waits for a message.updated of mid whose status is in wanted; returns it."""
    wanted = (wanted,) if isinstance(wanted, str) else tuple(wanted)
    return sse.wait_for(lambda e: e.event == 'message.updated' and isinstance(e.json, dict)
                        and e.json.get('id') == mid and e.json.get('status') in wanted, timeout)


def wait_delta_chars(sse, mid, n, timeout=20):
    """Waits until sse has received at least n characters of deltas for mid."""
    def enough(e):
        return e.event == 'message.delta' and isinstance(e.json, dict) and \
            e.json.get('message_id') == mid and e.json['offset'] + len(e.json['text']) >= n
    return sse.wait_for(enough, timeout)


def fake_tokens(n):
    """What the fake upstream streams for tokens=n (without stamp)."""
    return 'tok ' * n


# ---------------------------------------------------------------------------
# Image and video tasks
# ---------------------------------------------------------------------------

TASK_FINAL = ('succeeded', 'failed')
TASK_EVENTS = ('task.created', 'task.updated', 'task.deleted', 'task.restored')


def create_task(client, kind, prompt, **fields):
    """POST /api/tasks; returns the task (201 expected)."""
    body = dict(fields, kind=kind, prompt=prompt)
    return client.post('/api/tasks', body).expect(201)


def get_task(client, tid):
    return client.get('/api/tasks/' + tid).expect(200)


def list_tasks(client, deleted=False, **query):
    q = dict(query)
    if deleted:
        q['deleted'] = '1'
    path = '/api/tasks' + ('?' + urllib.parse.urlencode(q) if q else '')
    return client.get(path).expect(200)


def wait_task(client, tid, pred, timeout, what):
    """Polls GET /api/tasks/{tid} until pred(task); returns the task."""
    last = []

    def check():
        t = get_task(client, tid)
        last[:] = [t]
        return t if pred(t) else None
    try:
        return wait_until(check, timeout, what, interval=0.05)
    except AssertionError as e:
        raise AssertionError('%s; last seen %s' % (e, short(json.dumps(last[0]) if last else None)))


def wait_task_final(client, tid, timeout=30):
    return wait_task(client, tid, lambda t: t['status'] in TASK_FINAL, timeout,
                     'task %s to succeed or fail' % tid)


def task_events(events, tid):
    """The task.* events about task tid, in the order given."""
    return [e for e in events if e.event in TASK_EVENTS and isinstance(e.json, dict)
            and e.json.get('id') == tid]


def wait_task_event(sse, tid, pred, timeout=20):
    """Waits for a task.* event of tid with pred(event); returns it."""
    return sse.wait_for(lambda e: e.event in TASK_EVENTS and isinstance(e.json, dict)
                        and e.json.get('id') == tid and pred(e), timeout)


def sync_streams(client, streams, timeout=20):
    """
    A marker: client creates a conversation and every stream in streams (all of
    client's user) waits for its conversation.created. Events committed before it
    are then on each stream; returns the marker's id.
    """
    conv = client.create_conversation('marker')
    for s in streams:
        s.wait_for(lambda e: e.event == 'conversation.created' and isinstance(e.json, dict)
                   and e.json.get('id') == conv['id'], timeout)
    return conv['id']


def fake_tasks(prompt):
    """The fake upstream's jobs submitted with exactly this prompt."""
    with urllib.request.urlopen(env()['MJS_FAKE_URL'].rstrip('/') + '/fake/tasks', timeout=5) as r:
        tasks = json.loads(r.read().decode('utf-8'))['tasks']
    return [t for t in tasks if t['prompt'] == prompt]


def db_task(tid):
    """The task's job columns as the database holds them."""
    return psql_json("""
        SELECT json_build_object('status', status, 'progress', progress, 'upstream_id', upstream_id,
                                 'worker', worker, 'attempts', attempts, 'deleted_at', deleted_at)
        FROM mjs.tasks WHERE id = :'p1'""", tid)


def db_tasks_snapshot(*user_ids):
    """Every task row of these users as text, for "nothing changed" checks."""
    return psql_value("""
        SELECT coalesce(json_agg(t ORDER BY t.id)::text, '[]') FROM mjs.tasks t
        WHERE t.user_id::text = ANY (string_to_array(:'p1', ','))""", ','.join(user_ids))

#!/usr/bin/env python3
"""
test_cluster: mjs on two app hosts behind HAProxy with a Patroni failover
pair (dev/cluster), proving issue 19's promises end to end:

  1. a rename made through app host 1 reaches tabs on app host 2;
  2. every process of app host 1 killed mid-reply: its tabs reconnect through
     the balancer to app host 2 with Last-Event-ID and miss nothing, and the
     replies end by the recovery rule (mjs-worker(8), Recovery) on app host 2's
     worker: the one with text `failed` ("interrupted", its text kept), the one
     without retried to `completed`;
  3. the primary database host killed mid-reply (Patroni and PostgreSQL,
     SIGKILL; MJS_CLUSTER_CUT=1 pulls its cable first, like a power loss):
     Patroni promotes the standby, every mjs process reconnects without a
     restart (same pids), the reply completes whole, tabs miss nothing and no
     id repeats for a tab; in synchronous mode no event is lost;
  4. the old primary rejoins as the synchronous standby (pg_rewind);
  5. asynchronous mode (switched at run time): the standby stops receiving,
     the primary acknowledges a rename and more of a reply that every tab
     sees, and dies; the promoted standby never had them. Every tab gets
     `reset` with reason "history" (its last id names a lost epoch.seq), no
     id ever comes twice, the events after the reset are the new history's as
     stored, and the reply completes whole (the worker writes the lost text
     again).

Figures printed: seconds from the primary's death to Patroni's new leader, to
/api/healthz answering through the balancer, and to the first new event at
each tab (an event committed on the new primary: events.created_at after the
death); events lost; replies finished.

    python3 tests/cluster/test_cluster.py          # dev/cluster up --sync, the test, dev/cluster down
    MJS_CLUSTER_KEEP_UP=1 python3 tests/cluster/test_cluster.py    # leave the cluster up after

Run as root (it makes network namespaces). The checks themselves run inside
the cluster's client host (dev/cluster exec client ... --inside), the only
place its addresses are reachable from. Python 3 standard library only; the
HTTP, SSE and psql helpers are tests/integration/mjs.
"""

import base64
import json
import os
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CLUSTER = os.path.join(REPO, 'dev', 'cluster')
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))

import mjs                      # noqa: E402
import mjs.sse as mjs_sse       # noqa: E402
import mjs.client as mjs_client  # noqa: E402

WAIT = 30
INNER_TIMEOUT = 900             # the whole inside run, seconds


def say(*args):
    print(*args, flush=True)


# ---------------------------------------------------------------------------
# The cluster's coordinates and hosts
# ---------------------------------------------------------------------------

def cluster_dir():
    return os.environ.get('MJS_CLUSTER_DIR') or '/tmp/mjs-cluster'


def cenv():
    with open(os.path.join(cluster_dir(), 'cluster.env'), encoding='utf-8') as f:
        return mjs.parse_env_file(f.read())


def host_addr(host):
    return cenv()['MJS_CLUSTER_ADDR_' + host.upper()]


def app_url(host):
    return 'http://%s:8080' % host_addr(host)


def cluster(*args, timeout=300):
    """Runs dev/cluster ARGS...; returns its output; raises AssertionError when it fails."""
    proc = subprocess.run([CLUSTER] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)
    out = proc.stdout.decode('utf-8', 'replace')
    if proc.returncode != 0:
        raise AssertionError('dev/cluster %s failed (%d): %s' % (' '.join(args), proc.returncode, out[-3000:]))
    return out


def host_sh(host, script, timeout=120):
    """Runs script in bash with dev/lib.sh and app host HOST's env file sourced."""
    state = os.path.join(cluster_dir(), host)
    full = '. "%s/dev/lib.sh" && . "%s/env" && %s' % (REPO, state, script)
    proc = subprocess.run(['bash', '-c', full], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout,
                          env=dict(os.environ, MJS_STATE_DIR=state))
    if proc.returncode != 0:
        raise AssertionError('%s on %s failed: %s' % (script, host, proc.stdout.decode('utf-8', 'replace')[-2000:]))
    return proc.stdout.decode('utf-8', 'replace')


def pidfiles(host):
    """{name: pid} of the processes dev/cluster started on HOST (from their pid files)."""
    run = os.path.join(cluster_dir(), host, 'run')
    out = {}
    for f in sorted(os.listdir(run)) if os.path.isdir(run) else []:
        if f.endswith('.pid'):
            with open(os.path.join(run, f)) as fh:
                out[f[:-4]] = int(fh.read().strip() or 0)
    return out


def killed_at(host):
    """When dev/cluster kill last killed HOST (wall clock, seconds)."""
    with open(os.path.join(cluster_dir(), host, 'killed_at')) as f:
        return float(f.read())


def patroni_cluster():
    """Patroni's GET /cluster from any database host that answers, or None."""
    for h in ('db1', 'db2'):
        try:
            with urllib.request.urlopen('http://%s:8008/cluster' % host_addr(h), timeout=2) as r:
                return json.loads(r.read().decode('utf-8'))
        except (OSError, ValueError):
            continue
    return None


def patroni_leader():
    c = patroni_cluster() or {}
    for m in c.get('members', []):
        if m.get('role') == 'leader' and m.get('state') == 'running':
            return m
    return None


def healthz(url):
    try:
        with urllib.request.urlopen(url + '/api/healthz', timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


# ---------------------------------------------------------------------------
# Clients pinned to one app host (nginx directly) or through the balancer
# ---------------------------------------------------------------------------

_where = threading.local()
_url_parts = mjs.url_parts


def _pinned_url_parts():
    url = getattr(_where, 'url', None)
    if not url:
        return _url_parts()
    u = urllib.parse.urlsplit(url)
    return u.scheme, u.hostname, u.port or 80, u.netloc


mjs_sse.url_parts = _pinned_url_parts        # the SSE and Client modules look it up at each connect
mjs_client.url_parts = _pinned_url_parts


class at_url:
    """Within the block, this thread's new connections go to url (an app host's nginx)."""

    def __init__(self, url):
        self.url = url

    def __enter__(self):
        self.saved = getattr(_where, 'url', None)
        _where.url = self.url

    def __exit__(self, *exc):
        _where.url = self.saved
        return False


class PinnedClient(mjs.Client):
    """A Client whose requests all go to url (still with the balancer's Origin)."""

    def __init__(self, url, base):
        super().__init__()
        self.url = url
        self.cookies = dict(base.cookies)
        self.username, self.password, self.user = base.username, base.password, base.user

    def _connect(self):
        with at_url(self.url):
            return super()._connect()


def seq_of(event_id):
    """
    The per-user seq an SSE id names. Today the id is the seq itself; with
    epochs (issue 19 part 3) it will carry the epoch too: the seq is then its
    last run of digits, and ids are compared whole for repeats.
    """
    if isinstance(event_id, int):
        return event_id
    digits = ''
    for ch in reversed(str(event_id)):
        if not ch.isdigit():
            break
        digits = ch + digits
    assert digits, 'SSE id %r names no seq' % (event_id,)
    return int(digits)


class Tab:
    """
    One browser tab: an event stream that, when it ends, reconnects through
    the balancer with the Last-Event-ID it has (every 0.5 s until it gets a
    200), as EventSource does. streams: every SSE it had, in order.
    """

    def __init__(self, name, client, first_url=None):
        self.name = name
        self.client = client
        self.streams = []
        self.reconnects = []            # (time.monotonic(), status) of each try
        self._stop = False
        with at_url(first_url):
            s = mjs.SSE(client, timeout=WAIT)
        assert s.status == 200, '%s: %s %r' % (name, s.status, s.body)
        self.first_seq = seq_of(s.start_id) + 1
        self.streams.append(s)
        self._thread = threading.Thread(target=self._follow, name='tab-' + name, daemon=True)
        self._thread.start()

    def last_id(self):
        for s in reversed(self.streams):
            if s._parser.last_event_id:
                return s._parser.last_event_id
        return str(self.first_seq - 1)

    def _follow(self):
        while not self._stop:
            cur = self.streams[-1]
            cur.wait_closed(0.2)
            if self._stop or not cur.closed:
                continue
            deadline = time.monotonic() + 120
            while not self._stop and time.monotonic() < deadline:
                try:
                    s = mjs.SSE(self.client, last_event_id=self.last_id(), timeout=10)
                except Exception as e:     # a refused or failed try: the next in 0.5 s
                    self.reconnects.append((time.monotonic(), repr(e)))
                    time.sleep(0.5)
                    continue
                self.reconnects.append((time.monotonic(), s.status))
                if s.status == 200 and not s.closed:
                    self.streams.append(s)
                    break
                s.close()
                time.sleep(0.5)

    def events(self):
        return [e for s in list(self.streams) for e in s.events()]

    def wait_for(self, pred, timeout, what):
        return mjs.wait_until(lambda: next((e for e in self.events() if pred(e)), None), timeout,
                              '%s: %s' % (self.name, what), interval=0.05)

    def close(self):
        self._stop = True
        self._thread.join(15)
        for s in self.streams:
            s.close()


def check_tab(tab, mids_final, label):
    """
    Every event the tab got across its streams: no reset, no repeated id, seqs
    first_seq, first_seq+1, ... each once and in order, equal to mjs.events
    (type and data), and for each reply its deltas contiguous from offset 0
    and its text REST's. Returns the number of stored events the tab lacks.
    """
    events = tab.events()
    assert not [e for e in events if e.event == 'reset'], '%s %s: got reset in synchronous mode' % (label, tab.name)
    ids = [str(e.id) for e in events]
    assert len(ids) == len(set(ids)), '%s %s: an id came twice: %r' % (label, tab.name, ids)
    seqs = [seq_of(e.id) for e in events]
    stored = mjs.db_events(tab.client.user_id, tab.first_seq - 1)
    stored_seqs = [e['seq'] for e in stored]
    lost = len(set(stored_seqs) - set(seqs))
    assert seqs == list(range(tab.first_seq, tab.first_seq + len(seqs))), \
        '%s %s: seqs not each once in order from %d: %r' % (label, tab.name, tab.first_seq, seqs)
    assert seqs == stored_seqs[:len(seqs)], '%s %s: seqs %r, stored %r' % (label, tab.name, seqs, stored_seqs)
    for e, want in zip(events, stored):
        assert e.event == want['type'] and e.json == want['data'], \
            '%s %s: event %s differs from mjs.events: %s vs %s' % (
                label, tab.name, e.id, mjs.short(e.data), mjs.short(json.dumps(want)))
    for mid, final in mids_final.items():
        text = mjs.concat_deltas(mjs.deltas(events, mid), 0, '%s %s' % (label, tab.name))
        assert text == final['content'], '%s %s: streamed text %r, REST %r' % (
            label, tab.name, mjs.short(text), mjs.short(final['content']))
        st = mjs.statuses(events, mid)
        assert st and st[-1] == final['status'], '%s %s: statuses %r, REST %s' % (label, tab.name, st, final['status'])
    return lost


# ---------------------------------------------------------------------------
# The steps (one world: one user, tabs on both app hosts)
# ---------------------------------------------------------------------------

class World:
    pass


FIGURES = []


def figure(name, value):
    FIGURES.append((name, value))
    say('  figure: %s = %s' % (name, value))


def step_rename_through_app1_reaches_tabs_on_app2(w):
    w.a = mjs.Client()
    w.a.signup()
    w.conv = w.a.create_conversation('cluster')
    w.tabs = [Tab('app1-tab', w.a.same_session(), app_url('app1')),
              Tab('app2-tab', w.a.same_session(), app_url('app2')),
              Tab('lb-tab-1', w.a.same_session()),
              Tab('lb-tab-2', w.a.another_device())]
    via_app1 = PinnedClient(app_url('app1'), w.a)
    t0 = time.monotonic()
    renamed = via_app1.rename_conversation(w.conv['id'], 'renamed on app1')
    for tab in w.tabs:
        ev = tab.wait_for(lambda e: e.event == 'conversation.updated' and e.json == renamed, WAIT,
                          'the rename made through app1')
        if tab.name == 'app2-tab':
            figure('rename through app1 to a tab on app2 (ms)', round((ev.received_at - t0) * 1000, 1))
    via_app1.close()
    for tab in w.tabs:
        check_tab(tab, {}, 'after the rename')


def step_app_host_killed_mid_reply_tabs_move_and_miss_nothing(w):
    a = w.a
    # Both replies are claimed by app1's worker: app2's stops for the claim.
    host_sh('app2', 'mjs_stop worker')
    conv2 = a.create_conversation('slow start')
    streaming = mjs.send_message(a, w.conv['id'], 'long', 'fake:tps=20:tokens=400')['assistant_message']['id']
    waiting = mjs.send_message(a, conv2['id'], 'slow start', 'fake:delay=10:tps=50:tokens=20')['assistant_message']['id']
    for tab in w.tabs:
        tab.wait_for(lambda e: e.event == 'message.delta' and e.json.get('message_id') == streaming
                     and e.json['offset'] >= 40, WAIT, '40 characters of the reply')
    holders = mjs.psql("SELECT worker, state FROM mjs.generations WHERE message_id IN (:'p1', :'p2')",
                       streaming, waiting)
    assert all(r[0] == 'app1' and r[1] == 'running' for r in holders), 'not both held by app1: %r' % holders
    host_sh('app2', 'mjs_start_worker')

    on_app1 = [t for t in w.tabs if t.name == 'app1-tab']
    # counted before the kill: a tab may be streaming again through the
    # balancer before dev/cluster kill has returned
    seen = {t.name: len(t.streams) for t in w.tabs}
    t0, wall0 = time.monotonic(), time.time()
    cluster('kill', 'app1')
    t_kill = t0 + (killed_at('app1') - wall0)
    for t in on_app1:
        try:
            mjs.wait_until(lambda: len(t.streams) > seen[t.name], WAIT, '%s to reconnect through the balancer' % t.name)
        except AssertionError as e:
            raise AssertionError('%s; its streams: %s; its tries: %r' % (
                e, ['%r (%s)' % (s, s.close_reason) for s in t.streams], t.reconnects)) from None
        figure('app1 killed to %s streaming again through the balancer (s)' % t.name,
               round(t.reconnects[-1][0] - t_kill, 2))

    failed = mjs.wait_final(a, w.conv['id'], streaming, 90)
    retried = mjs.wait_final(a, conv2['id'], waiting, 90)
    assert failed['status'] == 'failed' and 'interrupted' in (failed['error'] or ''), mjs.short(json.dumps(failed))
    assert failed['content'] and mjs.fake_tokens(400).startswith(failed['content']), mjs.short(failed['content'])
    assert retried['status'] == 'completed' and retried['content'] == mjs.fake_tokens(20), mjs.short(json.dumps(retried))
    held = mjs.psql("SELECT worker, attempts FROM mjs.generations WHERE message_id = :'p1'", waiting)
    assert held and held[0] == ['app2', '2'], 'the retried reply: %r (app2, attempt 2 expected)' % held
    figure('app1 kill: replies finished by the recovery rule', 'interrupted one failed with its %d chars, '
           'the one without text completed on app2 (attempt 2)' % len(failed['content']))
    lost = 0
    for tab in w.tabs:
        for mid in (streaming, waiting):
            mjs.wait_until(lambda: mjs.statuses(tab.events(), mid)[-1:] in (['failed'], ['completed']), WAIT,
                           '%s: the final status of %s' % (tab.name, mid))
        lost += check_tab(tab, {streaming: failed, waiting: retried}, 'app1 killed')
    figure('app1 kill: events lost', lost)
    assert lost == 0
    cluster('start', 'app1')
    mjs.wait_until(lambda: healthz(app_url('app1')), WAIT, 'app1 back')


def step_primary_killed_mid_reply_standby_promoted_tabs_miss_nothing(w):
    a = w.a
    cut = os.environ.get('MJS_CLUSTER_CUT') == '1'
    w.tabs.append(Tab('app1-tab-2', a.same_session(), app_url('app1')))   # app1 is back: a tab on it again
    old = patroni_leader()
    assert old, 'no Patroni leader'
    before = {h: pidfiles(h) for h in ('app1', 'app2')}
    mid = mjs.send_message(a, w.conv['id'], 'through the failover', 'fake:tps=20:tokens=400')['assistant_message']['id']
    for tab in w.tabs:
        tab.wait_for(lambda e: e.event == 'message.delta' and e.json.get('message_id') == mid
                     and e.json['offset'] >= 40, WAIT, '40 characters of the reply')

    t0, wall0 = time.monotonic(), time.time()
    cluster('kill', '--cut', old['name']) if cut else cluster('kill', old['name'])
    # the moment dev/cluster killed it: nothing commits after it, so an event
    # created later was committed on the new primary
    wall_kill = killed_at(old['name'])
    t_kill = t0 + (wall_kill - wall0)
    say('  killed the primary %s%s' % (old['name'], ' (cable pulled first)' if cut else ''))
    # promoted: another leader, on the next timeline
    new = mjs.wait_until(lambda: (lambda m: m if m and m['name'] != old['name'] and
                                  m.get('timeline', 0) > old['timeline'] else None)(patroni_leader()),
                         60, 'Patroni to promote the standby', interval=0.1)
    figure('primary killed to new leader %s on timeline %d (s)' % (new['name'], new['timeline']),
           round(time.monotonic() - t_kill, 2))
    mjs.wait_until(lambda: healthz(mjs.base_url()), 60, '/api/healthz through the balancer', interval=0.1)
    figure('primary killed to /api/healthz 200 through the balancer (s)', round(time.monotonic() - t_kill, 2))

    final = mjs.wait_final(a, w.conv['id'], mid, 90)
    assert final['status'] == 'completed' and final['content'] == mjs.fake_tokens(400), mjs.short(json.dumps(final))
    figure('primary kill: reply finished', '%s, %d chars, whole' % (final['status'], len(final['content'])))
    created = {int(r[0]): float(r[1]) for r in mjs.psql(
        "SELECT seq, extract(epoch FROM created_at) FROM mjs.events WHERE user_id = :'p1' AND seq >= :'p2'::bigint",
        a.user_id, min(t.first_seq for t in w.tabs))}
    figure('primary killed to the first event committed on the new primary (s)',
           round(min(t for t in created.values() if t > wall_kill) - wall_kill, 2))
    lost = 0
    firsts = []
    for tab in w.tabs:
        tab.wait_for(lambda e: e.event == 'message.updated' and e.json.get('id') == mid
                     and e.json.get('status') == 'completed', WAIT, 'the completed reply')
        lost += check_tab(tab, {mid: final}, 'primary killed')
        new_events = [e for e in tab.events() if created.get(seq_of(e.id), 0) > wall_kill]
        assert new_events, '%s: no event committed on the new primary' % tab.name
        firsts.append((tab.name, round(new_events[0].received_at - t_kill, 2)))
    figure('primary killed to the first new event at a tab (s, per tab)', firsts)
    figure('primary kill: events lost (synchronous mode)', lost)
    assert lost == 0
    after = {h: pidfiles(h) for h in ('app1', 'app2')}
    assert after == before, 'mjs processes were restarted: %r -> %r' % (before, after)
    w.old_primary = old['name']


def step_old_primary_rejoins_as_synchronous_standby(w):
    t0 = time.monotonic()
    cluster('start', w.old_primary)

    def rejoined():
        c = patroni_cluster() or {}
        return any(m.get('name') == w.old_primary and m.get('role') == 'sync_standby'
                   and m.get('state') in ('running', 'streaming') and isinstance(m.get('lag'), int)
                   for m in c.get('members', []))
    mjs.wait_until(rejoined, 90, '%s to rejoin as the synchronous standby' % w.old_primary, interval=0.2)
    figure('old primary %s back as synchronous standby (s)' % w.old_primary, round(time.monotonic() - t0, 2))
    log = os.path.join(cluster_dir(), w.old_primary, 'logs', 'patroni.log')
    with open(log, encoding='utf-8', errors='replace') as f:
        figure('old primary rejoined by', 'pg_rewind' if 'pg_rewind: Done' in f.read() else 'a new copy or no rewind needed')


def patroni_config(**changes):
    """
    PATCH Patroni's dynamic configuration (kept in etcd) through the leader's
    REST API, with its password (deploy/cluster/patroni.yml); checks that
    the same request without it is refused.
    """
    leader = patroni_leader()
    assert leader, 'no Patroni leader'
    url = 'http://%s:8008/config' % host_addr(leader['name'])
    body = json.dumps(changes).encode('utf-8')
    try:
        urllib.request.urlopen(urllib.request.Request(url, data=body, method='PATCH',
                                                      headers={'Content-Type': 'application/json'}), timeout=10)
        raise AssertionError("Patroni's PATCH /config took a request without its password")
    except urllib.error.HTTPError as e:
        assert e.code == 401, 'PATCH /config without the password: %d' % e.code
    with open(os.path.join(cluster_dir(), 'secrets', 'restapi'), encoding='utf-8') as f:
        auth = base64.b64encode(('patroni:' + f.read().strip()).encode('utf-8')).decode('ascii')
    req = urllib.request.Request(url, data=body, method='PATCH',
                                 headers={'Content-Type': 'application/json', 'Authorization': 'Basic ' + auth})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read().decode('utf-8'))


def replica_lag():
    """Bytes the replica is behind, by Patroni's view; None while it is not streaming."""
    for m in (patroni_cluster() or {}).get('members', []):
        if m.get('role') in ('replica', 'sync_standby') and m.get('state') in ('running', 'streaming'):
            lag = m.get('lag')
            return lag if isinstance(lag, int) else None
    return None


def step_async_failover_that_lost_commits_tells_tabs_reset(w):
    """
    Asynchronous replication loses what the standby had not received. Made
    certain here: the primary's walsender is stopped (SIGSTOP), then the
    primary acknowledges more of a reply and a rename, which every tab sees,
    and dies. Patroni promotes the standby, which never had them, on a new
    timeline. Every tab's last id then names an event of a lost history: it
    must get `reset` with reason "history" (never a silent skip, never an id
    again for other data), then the new history's events, each as stored.
    The worker writes the text the failover lost again: the reply completes
    whole.
    """
    a = w.a
    patroni_config(synchronous_mode=False)
    mjs.wait_until(lambda: mjs.psql_value('SHOW synchronous_standby_names') in ('', None), 30,
                   'the primary to stop waiting for its standby', interval=0.2)
    old = patroni_leader()
    mid = mjs.send_message(a, w.conv['id'], 'through an asynchronous failover',
                           'fake:tps=20:tokens=400')['assistant_message']['id']
    for tab in w.tabs:
        tab.wait_for(lambda e: e.event == 'message.delta' and e.json.get('message_id') == mid
                     and e.json['offset'] >= 40, WAIT, '40 characters of the reply')
    mjs.wait_until(lambda: replica_lag() == 0, 30, 'the standby to have the start of the reply', interval=0.1)

    with open(os.path.join(cluster_dir(), old['name'], 'data', 'postmaster.pid')) as f:
        postmaster = f.readline().strip()
    senders = subprocess.run(['pgrep', '-P', postmaster, '-f', 'walsender'], stdout=subprocess.PIPE,
                             timeout=10).stdout.split()
    assert senders, 'no walsender under the primary\'s postmaster %s' % postmaster
    for pid in senders:
        os.kill(int(pid), 19)       # SIGSTOP: the standby receives nothing more
    head_replicated = int(mjs.psql_value("SELECT event_seq FROM mjs.users WHERE id = :'p1'", a.user_id))

    lost_title = 'renamed on the old primary alone'
    renamed = a.rename_conversation(w.conv['id'], lost_title)
    for tab in w.tabs:
        tab.wait_for(lambda e: e.event == 'conversation.updated' and e.json == renamed, WAIT, 'the rename')
        tab.wait_for(lambda e: e.event == 'message.delta' and e.json.get('message_id') == mid
                     and e.json['offset'] >= 160, WAIT, '160 characters of the reply')
    seen = {tab.name: tab.events()[-1].raw_id for tab in w.tabs}
    say('  the tabs saw up to %s; the standby stopped receiving at seq %d' % (seen, head_replicated))

    t0, wall0 = time.monotonic(), time.time()
    cluster('kill', old['name'])
    t_kill = t0 + (killed_at(old['name']) - wall0)
    new = mjs.wait_until(lambda: (lambda m: m if m and m['name'] != old['name'] and
                                  m.get('timeline', 0) > old['timeline'] else None)(patroni_leader()),
                         60, 'Patroni to promote the standby', interval=0.1)
    figure('async: primary killed to new leader %s on timeline %d (s)' % (new['name'], new['timeline']),
           round(time.monotonic() - t_kill, 2))

    resets = []
    for tab in w.tabs:
        r = tab.wait_for(lambda e: e.event == 'reset' and e.received_at > t_kill, 90, 'reset after the failover')
        assert r.json.get('reason') == 'history' and r.epoch == new['timeline'], \
            '%s: reset %s %r (reason history, epoch %d expected)' % (tab.name, r.raw_id, r.json, new['timeline'])
        resets.append((tab.name, round(r.received_at - t_kill, 2)))
    figure('async: primary killed to reset at each tab (s)', resets)

    conv = [c for c in a.get('/api/conversations').expect(200)['items'] if c['id'] == w.conv['id']]
    assert conv and conv[0]['title'] != lost_title, \
        'the rename survived the failover: nothing was lost, so this proves nothing (%r)' % conv
    final = mjs.wait_final(a, w.conv['id'], mid, 90)
    assert final['status'] == 'completed' and final['content'] == mjs.fake_tokens(400), mjs.short(json.dumps(final))
    figure('async: reply finished', '%s, %d chars, whole (the lost text written again)' % (
        final['status'], len(final['content'])))

    lost = set()
    stored = {(int(r[0]), int(r[1])) for r in mjs.psql(
        "SELECT epoch, seq FROM mjs.events WHERE user_id = :'p1'", a.user_id)}
    for tab in w.tabs:
        tab.wait_for(lambda e: e.event == 'message.updated' and e.json.get('id') == mid
                     and e.json.get('status') == 'completed', WAIT, 'the completed reply')
        events = tab.events()
        raw = [e.raw_id for e in events]
        assert len(raw) == len(set(raw)), '%s: an id came twice: %r' % (tab.name, raw)
        k = max(i for i, e in enumerate(events) if e.event == 'reset')
        lost |= {(e.epoch, e.id) for e in events[:k] if e.epoch is not None and (e.epoch, e.id) not in stored}
        after = events[k + 1:]
        seqs = [e.id for e in after]
        head = events[k].json['seq']
        assert seqs == list(range(head + 1, head + 1 + len(seqs))), \
            '%s: after the reset, seqs not each once in order from %d: %r' % (tab.name, head + 1, seqs)
        rows = {e['seq']: e for e in mjs.db_events(a.user_id, head)}
        for e in after:
            want = rows.get(e.id)
            assert want and e.event == want['type'] and e.json == want['data'] and (e.epoch, e.id) in stored, \
                '%s: event %s is not the stored one' % (tab.name, e.raw_id)
    figure('async: events the tabs saw that the new primary never had', len(lost))
    assert lost, 'no event was lost, so the reset was not tested'


STEPS = [step_rename_through_app1_reaches_tabs_on_app2,
         step_app_host_killed_mid_reply_tabs_move_and_miss_nothing,
         step_primary_killed_mid_reply_standby_promoted_tabs_miss_nothing,
         step_old_primary_rejoins_as_synchronous_standby,
         step_async_failover_that_lost_commits_tells_tabs_reset]


def inside():
    """The steps, inside the client host; each depends on the ones before."""
    os.environ['MJS_STATE_DIR'] = os.path.join(cluster_dir(), 'app1')   # the mjs library's env file
    w = World()
    w.tabs = []
    passed = failed = skipped = 0
    broken = None
    try:
        for fn in STEPS:
            name = fn.__name__[len('step_'):]
            if broken:
                say('SKIP %s: an earlier step failed (%s)' % (name, broken))
                skipped += 1
                continue
            t0 = time.monotonic()
            say('---- %s' % name)
            try:
                r = fn(w)
            except Exception as e:     # the step's failure, whatever it raised
                traceback.print_exc()
                failed += 1
                broken = name
                say('FAIL %s: %s' % (name, ' '.join(str(e).split())[:600]))
                continue
            if isinstance(r, tuple) and r[0] == 'skip':
                skipped += 1
                say('NOT RUN %s: %s' % (name, r[1]))
            else:
                passed += 1
                say('PASS %s (%.1fs)' % (name, time.monotonic() - t0))
    finally:
        for t in w.tabs:
            t.close()
    say('')
    say('figures:')
    for k, v in FIGURES:
        say('  %s: %s' % (k, v))
    say('%d passed, %d failed, %d skipped' % (passed, failed, skipped))
    return 1 if failed else 0


def outside(argv):
    """dev/cluster up --sync, this file inside the client host, dev/cluster down."""
    if os.geteuid() != 0:
        say('test_cluster: run as root (dev/cluster makes network namespaces)')
        return 2
    rc = 1
    try:
        say(cluster('up', '--sync', timeout=900).rstrip())
        proc = subprocess.run([CLUSTER, 'exec', 'client', sys.executable, os.path.abspath(__file__), '--inside'],
                              stdin=subprocess.DEVNULL, timeout=INNER_TIMEOUT)
        rc = proc.returncode
        if rc != 0:
            subprocess.run([CLUSTER, 'status'], stdin=subprocess.DEVNULL, timeout=120)
    except (AssertionError, subprocess.TimeoutExpired) as e:
        say('test_cluster: %s' % e)
        say('0 passed, 1 failed')
        rc = 1
    finally:
        if os.environ.get('MJS_CLUSTER_KEEP_UP') != '1':
            subprocess.run([CLUSTER, 'down'], stdin=subprocess.DEVNULL, timeout=300)
    return rc


if __name__ == '__main__':
    if '--inside' in sys.argv[1:]:
        sys.exit(inside())
    sys.exit(outside(sys.argv[1:]))

// tests/web/mirror.test.mjs: the merge of REST answers and live events
// (web/js/mirror.js), with node's built-in test runner:  node --test tests/web/
//
// Hand-written cases for each rule, then a simulation: a random history of
// events on a server collection, and a tab that receives them in order while
// list loads (paged, each page at its own seq) and write answers arrive at
// random points in between. After every step the tab holds only true states,
// never one older than an event it received; at the end it holds exactly the
// server's collection, in the server's order.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Mirror, byCreated, byUpdatedDesc, byCreatedDesc } from '../../web/js/mirror.js';

const ids = (m, filter) => m.list(filter).map((o) => o.id);

// --- the rules, one by one ----------------------------------------------------------

test('an object created after the snapshot stays', () => {
  const m = new Mirror(byCreated);
  const t = m.begin();
  m.put({ id: 'b', created_at: '2', content: 'new' }, 6);
  m.settle(t, 5, [{ id: 'a', created_at: '1', content: 'old' }], true);
  m.end(t);
  assert.deepEqual(ids(m), ['a', 'b']);
});

test('an object deleted after the snapshot stays deleted', () => {
  const m = new Mirror(byCreated);
  const t = m.begin();
  m.remove('a', 6);
  m.settle(t, 5, [{ id: 'a', created_at: '1' }, { id: 'b', created_at: '2' }], true);
  m.end(t);
  assert.deepEqual(ids(m), ['b']);
});

test('an object deleted before the snapshot goes, though the tab had it', () => {
  const m = new Mirror(byCreated);
  m.put({ id: 'a', created_at: '1' }, 3);
  const t = m.begin();
  m.settle(t, 5, [{ id: 'b', created_at: '2' }], true);
  m.end(t);
  assert.deepEqual(ids(m), ['b']);
});

test('an older answer never undoes a newer event', () => {
  const m = new Mirror(byUpdatedDesc);
  const t = m.begin();
  m.put({ id: 'c', title: 'from event', updated_at: '9' }, 9);
  assert.equal(m.put({ id: 'c', title: 'from answer', updated_at: '7' }, 7), false);
  m.end(t);
  assert.equal(m.get('c').title, 'from event');
});

test('an answer that was in flight cannot bring a deleted object back', () => {
  const m = new Mirror(byUpdatedDesc);
  m.put({ id: 'c', title: 'x', updated_at: '1' }, 1);
  const rename = m.begin();
  m.remove('c', 8);
  assert.equal(m.put({ id: 'c', title: 'renamed', updated_at: '7' }, 7), false);
  m.end(rename);
  assert.equal(m.size, 0);
});

test('a restored object comes back with its newer state', () => {
  const m = new Mirror(byCreatedDesc);
  const t = m.begin();
  m.remove('t', 4);
  assert.equal(m.put({ id: 't', created_at: '1', blurred: true }, 5), true);
  m.end(t);
  assert.equal(m.get('t').blurred, true);
});

test('text that arrived during the load is applied on top of the snapshot', () => {
  const m = new Mirror(byCreated);
  const t = m.begin();
  assert.equal(m.append('r', 7, 'content', 3, 'def'), 'unknown');
  m.settle(t, 6, [{ id: 'r', created_at: '1', content: 'abc' }], true);
  m.end(t);
  assert.equal(m.get('r').content, 'abcdef');
});

test('text the snapshot already holds is not doubled', () => {
  const m = new Mirror(byCreated);
  m.put({ id: 'r', created_at: '1', content: '' }, 1);
  assert.equal(m.append('r', 2, 'content', 0, 'ab'), 'applied');
  const t = m.begin();
  assert.equal(m.append('r', 3, 'content', 2, 'cd'), 'applied');
  m.settle(t, 3, [{ id: 'r', created_at: '1', content: 'abcd' }], true);
  m.end(t);
  assert.equal(m.append('r', 3, 'content', 2, 'cd'), 'seen');
  assert.equal(m.get('r').content, 'abcd');
});

test('offsets count code points, and an overlap takes only the new tail', () => {
  const m = new Mirror(byCreated);
  m.put({ id: 'r', created_at: '1', content: '写😀' }, 1);
  assert.equal(m.append('r', 2, 'content', 1, '😀好'), 'applied');
  assert.equal(m.get('r').content, '写😀好');
  assert.equal(m.append('r', 3, 'content', 5, 'x'), 'hole');
});

test('each part of a message keeps its own offset', () => {
  const m = new Mirror(byCreated);
  m.put({ id: 'r', created_at: '1', content: '', reasoning: '' }, 1);
  assert.equal(m.append('r', 2, 'reasoning', 0, 'hmm'), 'applied');
  assert.equal(m.append('r', 3, 'content', 0, 'yes'), 'applied');
  assert.deepEqual([m.get('r').reasoning, m.get('r').content], ['hmm', 'yes']);
});

test('a later page only adds, and brings back what the first page dropped', () => {
  const m = new Mirror(byCreatedDesc);
  for (const [id, at] of [['a', '5'], ['b', '4'], ['c', '3'], ['d', '2']]) m.put({ id, created_at: at }, 1);
  const t = m.begin();
  m.settle(t, 8, [{ id: 'a', created_at: '5' }], true);      // the first page: a, more follow
  assert.deepEqual(ids(m), ['a']);
  m.put({ id: 'e', created_at: '6' }, 9);                    // created meanwhile
  m.settle(t, 9, [{ id: 'b', created_at: '4' }, { id: 'd', created_at: '2' }], false);
  m.end(t);
  assert.deepEqual(ids(m), ['e', 'a', 'b', 'd']);
});

test('the pages of one load settle in order, the first as the whole; forget drops what a 404 says is gone', () => {
  const m = new Mirror(byCreatedDesc);
  m.put({ id: 'old', created_at: '0' }, 1);
  const t = m.begin();
  const holes = m.settlePages(t, [{ items: [{ id: 'b', created_at: '2' }], seq: 5 },
    { items: [{ id: 'a', created_at: '1' }], seq: 6 }]);
  m.end(t);
  assert.deepEqual([holes, ids(m)], [[], ['b', 'a']]);
  const stale = m.begin();
  m.clear();
  assert.equal(m.settlePages(stale, [{ items: [], seq: 7 }]), null);
  m.put({ id: 'x', created_at: '3' }, 8);
  const w = m.begin();
  assert.equal(m.forget('x'), true);
  assert.equal(m.put({ id: 'x', created_at: '3' }, 8), false, 'an answer as old as what was held does not bring it back');
  m.end(w);
});

test('the order is the server\'s, not the arrival\'s', () => {
  const m = new Mirror(byCreated);
  m.put({ id: 'y', created_at: '2026-01-01T00:00:00.000002Z' }, 2);
  m.put({ id: 'x', created_at: '2026-01-01T00:00:00.000001Z' }, 3);
  m.put({ id: 'w', created_at: '2026-01-01T00:00:00.000002Z' }, 4);
  assert.deepEqual(ids(m), ['x', 'w', 'y']);
});

test('an answer for a cleared mirror is ignored', () => {
  const m = new Mirror(byCreated);
  const t = m.begin();
  m.clear();
  assert.equal(m.settle(t, 3, [{ id: 'a', created_at: '1' }], true), null);
  m.end(t);
  assert.equal(m.size, 0);
});

test('tombstones and the record go once no request that needs them is in flight', () => {
  const m = new Mirror(byCreated);
  const t1 = m.begin();
  m.remove('a', 2);
  const t2 = m.begin();
  m.remove('b', 3);
  m.heard(3);
  m.end(t1);
  assert.deepEqual([...m.gone.keys()], ['b']);
  assert.equal(m.log.length, 1);
  m.end(t2);
  assert.equal(m.gone.size, 0);
  assert.equal(m.log.length, 0);
});

test('a deletion an answer told of is kept until the stream has delivered it', () => {
  const m = new Mirror(byCreated);
  m.put({ id: 'a', created_at: '1' }, 1);
  m.heard(1);
  const t = m.begin();
  m.remove('a', 5);            // DELETE's answer, ahead of the stream
  m.end(t);
  assert.equal(m.put({ id: 'a', created_at: '1', title: 'late' }, 4), false, 'an older event does not bring it back');
  assert.equal(m.append('a', 3, 'content', 0, 'x'), 'seen');
  m.heard(5);
  assert.equal(m.gone.size, 0);
});

// tasks.js keeps the grid and the trash as two mirrors; a task's answer may move
// it from one to the other, so every task request holds a ticket on both.
test('a restore answered after a newer delete leaves the task in the trash only', () => {
  const active = new Mirror(byCreatedDesc);
  const trash = new Mirror(byCreatedDesc);
  const put = (t, seq) => {
    if (t.deleted_at) { active.remove(t.id, seq); trash.put(t, seq); }
    else { trash.remove(t.id, seq); active.put(t, seq); }
  };
  trash.put({ id: 'x', created_at: '1', deleted_at: 'then' }, 1);
  trash.heard(1);
  active.heard(1);
  const tickets = [active.begin(), trash.begin()];            // POST .../restore
  put({ id: 'x', created_at: '1', deleted_at: null }, 2);      // task.restored, seq 2
  active.heard(2); trash.heard(2);
  active.remove('x', 3);                                        // task.deleted, seq 3 (another device)
  trash.put({ id: 'x', created_at: '1', deleted_at: 'now' }, 3);
  active.heard(3); trash.heard(3);
  put({ id: 'x', created_at: '1', deleted_at: null }, 2);      // the restore's answer, late
  active.end(tickets[0]); trash.end(tickets[1]);
  assert.deepEqual([ids(active), ids(trash)], [[], ['x']]);
});

// --- the simulation -------------------------------------------------------------------

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

const PIECES = ['a', 'é', '写', '😀', 'xy', ' '];

// A random history of n events over a few ids: puts (create, update, restore),
// removes and appends. Returns {events, stateAt(seq) → Map id → object}.
function history(rand, n) {
  const live = new Map();
  const created = new Map();
  const events = [];
  const states = [new Map()];
  const pick = (arr) => arr[Math.floor(rand() * arr.length)];
  for (let seq = 1; seq <= n; seq++) {
    const r = rand();
    const liveIds = [...live.keys()];
    let ev;
    if (liveIds.length && r < 0.35) {
      const id = pick(liveIds);
      const o = live.get(id);
      const text = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => pick(PIECES)).join('');
      ev = { seq, op: 'append', id, field: 'content', offset: [...o.content].length, text };
      live.set(id, { ...o, content: o.content + text });
    } else if (liveIds.length && r < 0.5) {
      const id = pick(liveIds);
      ev = { seq, op: 'remove', id };
      live.delete(id);
    } else {
      const id = 'id' + Math.floor(rand() * 8);
      if (!created.has(id)) created.set(id, String(seq).padStart(4, '0'));
      const old = live.get(id);
      const obj = { id, created_at: created.get(id), updated_at: String(seq).padStart(4, '0'),
        title: 't' + seq, content: old ? old.content : '' };
      ev = { seq, op: 'put', obj };
      live.set(id, obj);
    }
    events.push(ev);
    states.push(new Map(live));
  }
  return { events, stateAt: (seq) => states[seq] };
}

function simulate(seed, compare) {
  const rand = rng(seed);
  const n = 10 + Math.floor(rand() * 50);
  const { events, stateAt } = history(rand, n);
  const m = new Mirror(compare);
  let received = 0;
  let known = 0;                      // the newest seq the tab has heard of
  let lastSeen = new Map();           // id → seq of the last event about it received
  const loads = [];                   // {ticket, pages: [{start}], after}
  const writes = [];                  // {ticket, seq, id}
  const ops = [];

  const serverList = (seq) => [...stateAt(seq).values()].sort(compare);

  // A load of the whole list, page by page: each page is its own request.
  function startLoad() {
    loads.push({ ticket: m.begin(), start: known, pageSize: 1 + Math.floor(rand() * 4), after: null, first: true });
  }
  function answerLoad(i) {
    const l = loads[i];
    const seq = l.start + Math.floor(rand() * (n - l.start + 1));
    const all = serverList(seq).filter((o) => l.after === null || compare(o, l.after) > 0);
    const items = all.slice(0, l.pageSize);
    const more = all.length > l.pageSize;
    const holes = m.settle(l.ticket, seq, items, l.first);
    known = Math.max(known, seq);
    assert.deepEqual(holes, [], `seed ${seed}: no hole after settling at ${seq}`);
    m.end(l.ticket);
    ops.push(`page@${seq}(${items.map((o) => o.id)})`);
    if (more) {
      loads[i] = { ticket: m.begin(), start: known, pageSize: l.pageSize, after: items[items.length - 1], first: false };
    } else {
      loads.splice(i, 1);
    }
  }
  // A write whose answer is the state of one object after event seq, its own
  // event, newer than anything the tab knows of when the request starts. (A
  // request's answer is never older than what the tab knew when it was sent.)
  function startWrite() {
    if (known >= n) return;
    const seq = known + 1 + Math.floor(rand() * (n - known));
    const ev = events[seq - 1];
    writes.push({ ticket: m.begin(), seq, id: ev.obj ? ev.obj.id : ev.id });
  }
  function answerWrite(i) {
    const w = writes.splice(i, 1)[0];
    const obj = stateAt(w.seq).get(w.id);
    if (obj) m.put(obj, w.seq); else m.remove(w.id, w.seq);
    known = Math.max(known, w.seq);
    m.end(w.ticket);
    ops.push(`write@${w.seq}(${w.id})`);
  }
  function receive() {
    const ev = events[received++];
    known = Math.max(known, ev.seq);
    m.heard(ev.seq);
    lastSeen.set(ev.obj ? ev.obj.id : ev.id, ev.seq);
    ops.push(`ev${ev.seq}:${ev.op}:${ev.obj ? ev.obj.id : ev.id}`);
    if (ev.op === 'put') m.put(ev.obj, ev.seq);
    else if (ev.op === 'remove') m.remove(ev.id, ev.seq);
    else {
      const r = m.append(ev.id, ev.seq, ev.field, ev.offset, ev.text);
      assert.notEqual(r, 'hole', `seed ${seed}: a hole at ${ev.seq} (${ops.join(' ')})`);
      if (r === 'unknown') assert.ok(loads.length > 0, `seed ${seed}: text for an unknown object at ${ev.seq} with no load in flight (${ops.join(' ')})`);
    }
  }
  function invariant() {
    for (const [id, e] of m.entries) {
      const truth = stateAt(e.seq).get(id);
      assert.deepEqual(e.obj, truth, `seed ${seed}: ${id} held as of ${e.seq} is that state (${ops.join(' ')})`);
      assert.ok(e.seq >= (lastSeen.get(id) || 0), `seed ${seed}: ${id} not older than an event received (${ops.join(' ')})`);
    }
    // Not held though alive from its last event received up to the newest
    // seq the tab knows of: only while a load that will bring it is in flight,
    // or an event about it that will is still on its way (a page of a list
    // cannot tell an object that moved to an earlier page from one deleted).
    for (const [id, seq] of lastSeen) {
      if (m.entries.has(id) || loads.length) continue;
      if (events.slice(received, known).some((ev) => (ev.obj ? ev.obj.id : ev.id) === id)) continue;
      let alive = true;
      for (let k = seq; k <= known && alive; k++) alive = stateAt(k).has(id);
      assert.ok(!alive, `seed ${seed}: ${id} lost (${ops.join(' ')})`);
    }
  }

  startLoad();
  let steps = 0;
  while (received < n || loads.length || writes.length) {
    if (++steps > 10000) throw new Error('simulation did not end');
    const r = rand();
    if (r < 0.45 && received < n) receive();
    else if (r < 0.6 && loads.length) answerLoad(Math.floor(rand() * loads.length));
    else if (r < 0.7 && writes.length) answerWrite(Math.floor(rand() * writes.length));
    else if (r < 0.76 && loads.length < 2) startLoad();
    else if (r < 0.86) startWrite();
    else if (received < n) receive();
    else if (loads.length) answerLoad(0);
    else if (writes.length) answerWrite(0);
    invariant();
  }
  assert.deepEqual(m.list(), serverList(n), `seed ${seed}: the tab ends with the server's state (${ops.join(' ')})`);
  assert.equal(m.gone.size, 0, `seed ${seed}: no tombstone left once nothing is in flight`);
  assert.equal(m.log.length, 0, `seed ${seed}: no record left once nothing is in flight`);
}

test('random interleavings end in the server\'s state (messages: oldest first)', () => {
  for (let seed = 1; seed <= 400; seed++) simulate(seed, byCreated);
});

test('random interleavings end in the server\'s state (conversations: moving on update)', () => {
  for (let seed = 1001; seed <= 1400; seed++) simulate(seed, byUpdatedDesc);
});

test('random interleavings end in the server\'s state (tasks: newest first)', () => {
  for (let seed = 2001; seed <= 2400; seed++) simulate(seed, byCreatedDesc);
});

// mirror.js: a tab's copy of one server collection (the conversations, the open
// conversation's messages, the tasks), merged from REST answers and live events
// by the user's event seq. Pure: no DOM, no fetch; tests/web/ drives it.
//
// Every event has a seq, and every REST answer says which seq it reflects
// (Mjs-Event-Seq, mjs-events(7)): a list or object read holds every event up to
// its seq and none after; a write's answer is the state after its own last
// event. So each object here carries the seq its state is from, and:
// - a state older than the one held is ignored: an answer that was in flight
//   while an event changed the object does not undo the event;
// - a deleted object leaves a tombstone with the seq of its deletion, so an
//   older answer (a list, a rename's reply) cannot bring it back;
// - a list answer at seq S replaces what the tab held: an object held from
//   seq <= S that the list does not contain was deleted by S and goes; one held
//   from a newer event stays; events newer than S that arrived while the list
//   was in flight are applied again on top (they are recorded while a request
//   is in flight), so text appended to a message the list did not know yet is
//   not lost;
// - the order is the server's (the collection's compare function), never the
//   order things arrived in.
// Applying anything twice changes nothing. Tombstones and the record of events
// are kept only while a request that started before them is still in flight
// (a request started later sees a state at least as new as they are).

import { cpLength, cpSlice } from './dom.js';

export class Mirror {
  // compare(a, b): the server's order of two objects (negative: a first).
  constructor(compare) {
    this.compare = compare;
    this.entries = new Map();    // id → {obj, seq, lens: {field: code points}}
    this.gone = new Map();       // id → {seq, mark}: deleted at seq
    this.inflight = new Set();   // tickets of requests in flight
    this.nextTicket = 1;
    this.log = [];               // [{mark, seq, op, args}] while requests are in flight
    this.epoch = 0;              // clear() makes older tickets stale
    this.whole = 0;              // seq of the newest answer that covered everything
    this.streamSeq = 0;          // every event up to this one has been delivered
  }

  get size() { return this.entries.size; }

  get(id) {
    const e = this.entries.get(id);
    return e ? e.obj : undefined;
  }

  seqOf(id) {
    const e = this.entries.get(id);
    return e ? e.seq : undefined;
  }

  // The objects passing filter (all without one), in the server's order.
  list(filter) {
    const out = [];
    for (const e of this.entries.values()) if (!filter || filter(e.obj)) out.push(e.obj);
    return out.sort(this.compare);
  }

  clear() {
    this.entries.clear();
    this.gone.clear();
    this.inflight.clear();
    this.log = [];
    this.epoch++;
    this.whole = 0;
    this.streamSeq = 0;
  }

  // --- requests ----------------------------------------------------------------

  // A REST request (a load or a write) starts: its answer may be older than
  // anything that arrives meanwhile. Pair with end().
  begin() {
    const ticket = { n: this.nextTicket++, epoch: this.epoch };
    this.inflight.add(ticket.n);
    return ticket;
  }

  // Is the ticket's answer still for this mirror (no clear() since begin())?
  current(ticket) { return ticket.epoch === this.epoch; }

  end(ticket) {
    if (!this.current(ticket)) return;
    this.inflight.delete(ticket.n);
    this.prune();
  }

  // The stream has delivered every event up to seq (call it for every event,
  // of any collection).
  heard(seq) {
    if (seq <= this.streamSeq) return;
    this.streamSeq = seq;
    if (this.gone.size) this.prune();
  }

  // A record made at mark m is needed by requests begun before it (n < m); a
  // tombstone also until the stream has delivered its deletion (an older event
  // about the object may still be on its way).
  prune() {
    let min = Infinity;
    for (const n of this.inflight) if (n < min) min = n;
    if (this.log.length) this.log = this.log.filter((r) => r.mark > min);
    for (const [id, g] of this.gone) if (g.mark <= min && g.seq <= this.streamSeq) this.gone.delete(id);
  }

  record(seq, op, args) {
    if (this.inflight.size) this.log.push({ mark: this.nextTicket, seq, op, args });
  }

  // --- what events and answers say ---------------------------------------------

  // obj as of seq (an event's object, a write's answer). Returns true when the
  // mirror changed.
  put(obj, seq) {
    this.record(seq, 'put', [obj]);
    return this.putAt(obj, seq);
  }

  putAt(obj, seq) {
    const g = this.gone.get(obj.id);
    if (g && g.seq >= seq) return false;
    const e = this.entries.get(obj.id);
    if (e && e.seq > seq) return false;
    if (g) this.gone.delete(obj.id);
    this.entries.set(obj.id, { obj, seq, lens: {} });
    return true;
  }

  // id was deleted at seq. Returns true when the mirror held it.
  remove(id, seq) {
    this.record(seq, 'remove', [id]);
    return this.removeAt(id, seq);
  }

  removeAt(id, seq) {
    const e = this.entries.get(id);
    if (e && e.seq > seq) return false;
    this.bury(id, seq);
    return this.entries.delete(id);
  }

  // A tombstone for id, deleted at seq, while a request that began before it
  // is in flight (one begun later sees the deletion itself) or the stream has
  // not yet delivered seq.
  bury(id, seq) {
    if (!this.inflight.size && seq <= this.streamSeq) return;
    const g = this.gone.get(id);
    if (!g || g.seq < seq) this.gone.set(id, { seq, mark: this.nextTicket });
  }

  // The server said id is gone (a 404) without saying when: dropped as of the
  // state held.
  forget(id) {
    return this.remove(id, this.seqOf(id) || 0);
  }

  // text appended to obj[field] at seq, starting at code point offset (a
  // message.delta). Returns 'applied', 'seen' (already held), 'unknown' (no such
  // object held: a load in flight will have it, else the caller must reload) or
  // 'hole' (text is missing before offset: the caller must reload).
  append(id, seq, field, offset, text) {
    this.record(seq, 'append', [id, field, offset, text]);
    return this.appendAt(id, seq, field, offset, text);
  }

  appendAt(id, seq, field, offset, text) {
    const e = this.entries.get(id);
    if (!e) return this.gone.has(id) || seq <= this.whole ? 'seen' : 'unknown';
    if (e.seq >= seq) return 'seen';
    const have = e.obj[field] || '';
    const len = e.lens[field] ?? (e.lens[field] = cpLength(have));
    const n = cpLength(text);
    if (offset > len) return 'hole';
    e.seq = seq;
    if (offset + n <= len) return 'seen';
    const tail = offset === len ? text : cpSlice(text, len - offset);
    e.obj = { ...e.obj, [field]: have + tail };
    e.lens[field] = offset + n;
    return 'applied';
  }

  // The answer of a list request begun with ticket: items as of seq. With whole,
  // the answer is the whole collection as of seq (or its first page: the
  // objects on later pages are dropped here and come back when their page is
  // settled, whole = false), so what the mirror held from seq or older and the
  // answer lacks was deleted by seq. A later page only adds: anything it lacks
  // that is held was either dropped by the first page or learned from events
  // newer than it, whose own deletions the stream will bring. Events newer
  // than seq recorded meanwhile are applied again. Returns the ids whose text
  // showed a hole (the caller reloads), or null when the ticket is stale (the
  // mirror was cleared since). Does not end the ticket.
  settle(ticket, seq, items, whole) {
    if (!this.current(ticket)) return null;
    if (whole && seq > this.whole) this.whole = seq;
    const ids = new Set();
    for (const obj of items) {
      ids.add(obj.id);
      const g = this.gone.get(obj.id);
      if (g && g.seq > seq) continue;
      const e = this.entries.get(obj.id);
      if (e && e.seq > seq) continue;
      if (g) this.gone.delete(obj.id);
      this.entries.set(obj.id, { obj, seq, lens: {} });
    }
    if (whole) {
      for (const [id, e] of this.entries) {
        if (ids.has(id) || e.seq > seq) continue;
        this.entries.delete(id);
        this.bury(id, seq);
      }
    }
    const holes = [];
    for (const r of this.log) {
      if (r.seq <= seq) continue;
      if (r.op === 'put') this.putAt(r.args[0], r.seq);
      else if (r.op === 'remove') this.removeAt(r.args[0], r.seq);
      else if (this.appendAt(r.args[0], r.seq, ...r.args.slice(1)) === 'hole') holes.push(r.args[0]);
    }
    return holes;
  }

  // Every page of one list load (api.js listPages: [{items, seq}]) settled in
  // order, the first as the whole collection. Returns the ids whose text showed
  // a hole, or null when the ticket is stale.
  settlePages(ticket, pages) {
    const holes = [];
    for (const [i, { items, seq }] of pages.entries()) {
      const h = this.settle(ticket, seq, items, i === 0);
      if (h === null) return null;
      holes.push(...h);
    }
    return holes;
  }
}

// The server's orders: messages oldest first, conversations and tasks newest
// first, ties broken by id (UUIDs compare as their lower-case text does).
function cmp(a, b) { return a < b ? -1 : a > b ? 1 : 0; }
export const byCreated = (a, b) => cmp(a.created_at, b.created_at) || cmp(a.id, b.id);
export const byUpdatedDesc = (a, b) => cmp(b.updated_at, a.updated_at) || cmp(b.id, a.id);
export const byCreatedDesc = (a, b) => cmp(b.created_at, a.created_at) || cmp(b.id, a.id);

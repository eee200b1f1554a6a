// stream.js: the tab's one EventSource on /api/events, and the connection
// indicator.
//
// Invariants:
// - At most one EventSource per tab. It opens at the event_seq that GET /api/me
//   gave before the state was loaded over REST, so no change made between the
//   load and the stream is missed; events that repeat what the load showed are
//   applied idempotently by the handlers.
// - Ids are "EPOCH.SEQ" (mjs-events(7)); the seq is what the mirrors merge by.
//   lastId follows the id of every event seen. When the browser itself gives up
//   (EventSource closed: 401, 429 over the per-user stream cap, 503, a proxy's
//   error page) we reopen with ?last_event_id=lastId ourselves, after checking
//   the session, waiting 2 s, then twice as long after each refusal (at most 30 s).
// - On `reset`, and when the stream comes back after a long disconnect, the
//   state is reloaded over REST (the replay would cover a short one). A reset
//   for "history" (events the tab saw were lost in a database failover, so
//   seqs may repeat with other events) starts the tab over instead: its copy
//   cannot be merged with the new history by seq.

import { t } from './i18n.js';
import { $ } from './dom.js';
import { api } from './api.js';

const TYPES = [
  'conversation.created', 'conversation.updated', 'conversation.deleted',
  'message.created', 'message.updated', 'message.deleted', 'message.delta',
  'task.created', 'task.updated', 'task.deleted', 'task.restored',
];
const LONG_DISCONNECT_MS = 30000;
const REOPEN_DELAY_MS = 2000;
const REOPEN_DELAY_MAX_MS = 30000;  // a server that keeps refusing (429 over the per-user cap, 503)

let source = null;
let lastId = '0';
let lastSeq = 0;
let lostAt = 0;
let reopenTimer = null;
let reopenDelay = REOPEN_DELAY_MS;
let hooks = null;

function setIndicator(state) {
  const conn = $('conn');
  conn.dataset.state = state;
  conn.textContent = t(state === 'reconnecting' ? 'reconnecting…' : state);
}

// The seq of an event id "EPOCH.SEQ" (or a bare "SEQ"); NaN for anything else.
export function seqOf(id) {
  const m = /^(?:[0-9]+\.)?([0-9]+)$/.exec(id);
  return m ? Number(m[1]) : NaN;
}

function noteId(event) {
  const seq = seqOf(event.lastEventId);
  if (Number.isSafeInteger(seq) && seq > lastSeq) {
    lastSeq = seq;
    lastId = event.lastEventId;
  }
}

function open() {
  const es = new EventSource('/api/events?last_event_id=' + encodeURIComponent(lastId));
  source = es;
  es.onopen = () => {
    if (es !== source) return;
    setIndicator('live');
    reopenDelay = REOPEN_DELAY_MS;
    const long = lostAt && Date.now() - lostAt > LONG_DISCONNECT_MS;
    lostAt = 0;
    if (long) hooks.reload('the connection was down for a while');
  };
  es.onerror = () => {
    if (es !== source) return;
    if (!lostAt) lostAt = Date.now();
    setIndicator('reconnecting');
    if (es.readyState === EventSource.CLOSED) {
      source = null;
      reopenTimer = setTimeout(reopen, reopenDelay);
      reopenDelay = Math.min(reopenDelay * 2, REOPEN_DELAY_MAX_MS);
    }
  };
  for (const type of TYPES) {
    es.addEventListener(type, (event) => {
      if (es !== source) return;
      noteId(event);
      let data;
      try {
        data = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      hooks.dispatch(type, data, seqOf(event.lastEventId));
    });
  }
  es.addEventListener('reset', (event) => {
    if (es !== source) return;
    // the stream goes on from the reset's id, even when its seq is lower
    const seq = seqOf(event.lastEventId);
    if (Number.isSafeInteger(seq)) {
      lastSeq = seq;
      lastId = event.lastEventId;
    }
    let why = null;
    try {
      why = JSON.parse(event.data).reason;
    } catch (e) {
      // an older server's reset: reload
    }
    if (why === 'history') hooks.restart('events this tab saw were lost in a database failover');
    else hooks.reload('the server asked for a reload');
  });
}

// The browser stopped retrying: find out whether the session is still there.
async function reopen() {
  reopenTimer = null;
  if (!hooks) return;
  try {
    await api('GET', '/me');
  } catch (e) {
    if (e.status === 401) return;  // api.js has sent the tab to the login form
    reopenTimer = setTimeout(reopen, reopenDelay);
    return;
  }
  if (hooks && !source) open();
}

// startStream(id, {dispatch(type, data, seq), reload(reason), restart(reason)}):
// id is where the state loaded over REST stands (GET /api/me's event_id).
export function startStream(id, handlers) {
  stopStream();
  hooks = handlers;
  lastId = String(id);
  lastSeq = seqOf(lastId) || 0;
  lostAt = 0;
  reopenDelay = REOPEN_DELAY_MS;
  setIndicator('connecting');
  open();
}

export function stopStream() {
  if (source) source.close();
  source = null;
  hooks = null;
  if (reopenTimer) clearTimeout(reopenTimer);
  reopenTimer = null;
  setIndicator('offline');
}

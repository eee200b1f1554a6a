// chat.js: the conversation list and the chat view.
//
// State is a copy of the server's, kept current by events and reloaded over
// REST when in doubt. Invariants:
// - Every apply is idempotent: objects are replaced by id, and a message never
//   goes back in status (created < pending < streaming < final) nor loses text
//   it had while it is still generating, so an event that repeats what a load
//   already showed changes nothing.
// - message.delta is applied by offset, in Unicode code points: appended when
//   offset equals the length we have, ignored when it ends within it (seen),
//   the new tail taken when it overlaps, and a hole (offset beyond our length)
//   reloads the conversation's messages over REST.
// - Only the open conversation's messages are held; the others load on opening.

import { api, listAll } from './api.js';
import { $, el, cpLength, cpSlice, shortTime } from './dom.js';
import { showNotice } from './notice.js';

const RANK = { created: 0, pending: 1, streaming: 2, completed: 3, stopped: 3, failed: 3 };
const GENERATING = new Set(['created', 'pending', 'streaming']);

const convs = new Map();        // id → conversation
let currentId = null;
const msgs = new Map();         // id → {m: message, len: code points of m.content}
let order = [];                 // message ids, oldest first
const nodes = new Map();        // message id → {li, text, ...}
let editingId = null;
let editDraft = '';             // the edit box's text, kept across re-renders
let renamingId = null;
let renameDraft = '';           // the rename box's text, kept across re-renders
let reloadRunning = null;
let reloadAgain = false;

// --- conversations ---------------------------------------------------------

function sortedConvs() {
  return [...convs.values()].sort((a, b) =>
    a.updated_at < b.updated_at ? 1 : a.updated_at > b.updated_at ? -1 : 0);
}

function renderConvList() {
  const list = $('conv-list');
  const items = sortedConvs().map((c) => {
    const li = el('li', { class: 'conv', dataset: { id: c.id }, 'aria-current': c.id === currentId ? 'true' : null });
    if (c.id === renamingId) {
      const input = el('input', { class: 'rename-input', maxlength: 200, 'aria-label': 'new title' });
      input.value = renameDraft;
      input.addEventListener('input', () => { renameDraft = input.value; });
      const finish = async (save) => {
        if (renamingId !== c.id) return;
        renamingId = null;
        const title = input.value.trim();
        if (save && title && title !== c.title) {
          try {
            upsertConv(await api('PATCH', '/conversations/' + c.id, { title }));
          } catch (e) {
            showNotice('Could not rename: ' + e.message);
          }
        }
        renderConvList();
      };
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') { e.preventDefault(); finish(true); }
        if (e.key === 'Escape') finish(false);
      });
      input.addEventListener('blur', () => finish(true));
      li.append(input);
      const fresh = input.value === (convs.get(c.id) || c).title;
      queueMicrotask(() => { input.focus(); if (fresh) input.select(); });
    } else {
      li.append(el('a', { class: 'conv-title', href: '#/c/' + c.id, text: c.title }));
    }
    li.append(
      el('button', { type: 'button', class: 'icon rename', title: 'Rename', 'aria-label': 'Rename',
        onclick: () => { renamingId = c.id; renameDraft = c.title; renderConvList(); } }, '✎'),
      el('button', { type: 'button', class: 'icon delete', title: 'Delete', 'aria-label': 'Delete',
        onclick: () => deleteConv(c) }, '×'));
    return li;
  });
  list.replaceChildren(...items);
  $('conv-empty').hidden = convs.size > 0;
  const cur = currentId && convs.get(currentId);
  $('chat-title').textContent = cur ? cur.title : '';
}

function upsertConv(c) {
  const old = convs.get(c.id);
  if (old && old.updated_at > c.updated_at) return;
  convs.set(c.id, c);
  if (renamingId !== c.id) renderConvList();
}

async function deleteConv(c) {
  if (!window.confirm('Delete "' + c.title + '" and all its messages?')) return;
  try {
    await api('DELETE', '/conversations/' + c.id);
    removeConv(c.id, false);
  } catch (e) {
    if (e.status === 404) removeConv(c.id, false);
    else showNotice('Could not delete the conversation: ' + e.message);
  }
}

function removeConv(id, elsewhere) {
  if (!convs.delete(id) && id !== currentId) return;
  if (renamingId === id) renamingId = null;
  if (id === currentId) {
    if (elsewhere) showNotice('This conversation was deleted in another tab or device.');
    location.hash = '#/';
  }
  renderConvList();
}

export async function newConversation() {
  try {
    const c = await api('POST', '/conversations', {});
    upsertConv(c);
    location.hash = '#/c/' + c.id;
  } catch (e) {
    showNotice('Could not create a conversation: ' + e.message);
  }
}

// --- messages ----------------------------------------------------------------

// The message we keep when `incoming` arrives for a message we may hold: never
// back in status, never shorter while still generating.
function merge(old, incoming) {
  if (!old) return incoming;
  const m = { ...incoming };
  if (RANK[m.status] < RANK[old.status]) {
    m.status = old.status;
    m.error = old.error;
  }
  if (GENERATING.has(incoming.status) && old.content.length > m.content.length &&
      old.content.startsWith(m.content)) {
    m.content = old.content;
  }
  return m;
}

function setMessage(m) {
  const had = msgs.get(m.id);
  const merged = merge(had && had.m, m);
  msgs.set(m.id, { m: merged, len: cpLength(merged.content) });
  if (!had) order.push(m.id);
  return !had;
}

function statusMark(m) {
  if (m.role !== 'assistant') return null;
  switch (m.status) {
  case 'created':
  case 'pending':
    return el('span', { class: 'mark spinner', role: 'status', 'aria-label': m.status === 'created' ? 'queued' : 'waiting for the first token', title: m.status });
  case 'streaming':
    return el('span', { class: 'mark streaming', text: 'writing…' });
  case 'stopped':
    return el('span', { class: 'mark interrupted', text: 'interrupted' });
  case 'failed':
    return el('span', { class: 'mark failed', text: 'failed' });
  default:
    return null;
  }
}

function nearBottom() {
  const box = $('messages');
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}

function scrollDown() {
  const box = $('messages');
  box.scrollTop = box.scrollHeight;
}

// Builds (or rebuilds) the element of message id, in place.
function renderMessage(id) {
  const entry = msgs.get(id);
  if (!entry) return;
  const m = entry.m;
  let n = nodes.get(id);
  if (!n) {
    const li = el('li', { class: 'msg', dataset: { id } });
    n = { li, text: document.createTextNode('') };
    nodes.set(id, n);
  }
  const { li } = n;
  li.className = 'msg msg-' + m.role + ' status-' + m.status;
  li.dataset.status = m.status;
  li.dataset.role = m.role;
  n.text.data = m.content;
  const content = el('div', { class: 'msg-content' }, n.text);
  const meta = el('div', { class: 'msg-meta' },
    el('span', { class: 'role', text: m.role === 'user' ? 'You' : 'AI' }),
    m.role === 'assistant' && m.model ? el('span', { class: 'model', text: m.model }) : null,
    statusMark(m),
    el('time', { datetime: m.created_at, text: shortTime(m.created_at) }));
  const actions = el('div', { class: 'msg-actions' },
    m.status === 'streaming' ? el('button', { type: 'button', class: 'stop', onclick: () => stopMessage(m.id) }, '■ Stop') : null,
    el('button', { type: 'button', class: 'link edit', onclick: () => startEdit(m.id) }, 'Edit'),
    el('button', { type: 'button', class: 'link delete', onclick: () => deleteMessage(m.id) }, 'Delete'));
  const parts = [meta];
  if (editingId === id) {
    const area = el('textarea', { class: 'edit-input', rows: 4, 'aria-label': 'edit message' });
    area.value = editDraft;
    area.addEventListener('input', () => { editDraft = area.value; });
    parts.push(area, el('div', { class: 'msg-actions' },
      el('button', { type: 'button', class: 'save', onclick: () => saveEdit(m.id, area.value) }, 'Save'),
      el('button', { type: 'button', class: 'link cancel', onclick: () => { editingId = null; renderMessage(m.id); } }, 'Cancel')));
  } else {
    parts.push(content);
    if (m.status === 'failed') {
      parts.push(el('p', { class: 'msg-error', text: m.error || 'the reply failed' }));
    }
    parts.push(actions);
  }
  li.replaceChildren(...parts);
}

function renderMessages() {
  const box = $('messages');
  const stick = nearBottom();
  for (const id of [...nodes.keys()]) if (!msgs.has(id)) nodes.delete(id);
  for (const id of order) renderMessage(id);
  box.replaceChildren(...order.map((id) => nodes.get(id).li));
  if (stick) scrollDown();
}

function updateMessage(id) {
  const stick = nearBottom();
  const isNew = !nodes.has(id);
  renderMessage(id);
  if (isNew) $('messages').append(nodes.get(id).li);
  if (stick || isNew) scrollDown();
}

async function loadMessages(convId) {
  const items = await listAll('/conversations/' + convId + '/messages');
  if (convId !== currentId) return;
  const fresh = new Map();
  for (const m of items) {
    const had = msgs.get(m.id);
    const merged = merge(had && had.m, m);
    fresh.set(m.id, { m: merged, len: cpLength(merged.content) });
  }
  msgs.clear();
  for (const [id, v] of fresh) msgs.set(id, v);
  order = items.map((m) => m.id);
  renderMessages();
}

// Reloads the open conversation's messages; coalesces calls made meanwhile.
async function reloadMessages() {
  if (reloadRunning) { reloadAgain = true; return reloadRunning; }
  reloadRunning = (async () => {
    do {
      reloadAgain = false;
      if (!currentId) break;
      try {
        await loadMessages(currentId);
      } catch (e) {
        if (e.status === 404) removeConv(currentId, true);
        else showNotice('Could not load the messages: ' + e.message);
      }
    } while (reloadAgain);
    reloadRunning = null;
  })();
  return reloadRunning;
}

async function stopMessage(id) {
  try {
    const m = await api('POST', '/messages/' + id + '/stop');
    if (m && m.conversation_id === currentId) { setMessage(m); updateMessage(m.id); }
  } catch (e) {
    if (e.status !== 409) showNotice('Could not stop the reply: ' + e.message);
  }
}

function startEdit(id) {
  const entry = msgs.get(id);
  if (!entry) return;
  if (GENERATING.has(entry.m.status)) {
    showNotice('This reply is still being generated: stop it or wait until it finishes, then edit it.');
    return;
  }
  editingId = id;
  editDraft = entry.m.content;
  renderMessage(id);
  const area = nodes.get(id).li.querySelector('textarea');
  if (area) area.focus();
}

async function saveEdit(id, content) {
  if (!content.trim()) { showNotice('A message cannot be empty.'); return; }
  try {
    const m = await api('PATCH', '/messages/' + id, { content });
    editingId = null;
    msgs.delete(id);
    order = order.filter((x) => x !== id);
    setMessage(m);
    renderMessages();
  } catch (e) {
    if (e.status === 409) showNotice('This reply is still being generated: stop it or wait until it finishes, then edit it.');
    else showNotice('Could not save the edit: ' + e.message);
  }
}

async function deleteMessage(id) {
  try {
    await api('DELETE', '/messages/' + id);
    dropMessage(id);
  } catch (e) {
    if (e.status === 409) showNotice('This reply is still being generated: stop it or wait until it finishes, then delete it.');
    else if (e.status === 404) dropMessage(id);
    else showNotice('Could not delete the message: ' + e.message);
  }
}

function dropMessage(id) {
  if (!msgs.delete(id)) return;
  order = order.filter((x) => x !== id);
  if (editingId === id) editingId = null;
  const n = nodes.get(id);
  if (n) n.li.remove();
  nodes.delete(id);
}

async function send(event) {
  event.preventDefault();
  const input = $('input');
  const content = input.value;
  if (!content.trim() || !currentId) return;
  const body = { content };
  const model = $('model').value.trim();
  if (model) body.model = model;
  $('send').disabled = true;
  try {
    const convId = currentId;
    const r = await api('POST', '/conversations/' + convId + '/messages', body);
    input.value = '';
    if (convId === currentId) {
      for (const m of [r.user_message, r.assistant_message]) { setMessage(m); updateMessage(m.id); }
    }
  } catch (e) {
    showNotice('Could not send: ' + e.message);
  } finally {
    $('send').disabled = false;
    input.focus();
  }
}

// --- events --------------------------------------------------------------------

function applyDelta(d) {
  if (d.conversation_id !== currentId) return;
  const entry = msgs.get(d.message_id);
  if (!entry) { reloadMessages(); return; }
  const textLen = cpLength(d.text);
  if (d.offset > entry.len) { reloadMessages(); return; }
  if (d.offset + textLen <= entry.len) return;
  const tail = d.offset === entry.len ? d.text : cpSlice(d.text, entry.len - d.offset);
  entry.m = { ...entry.m, content: entry.m.content + tail };
  entry.len = d.offset + textLen;
  const n = nodes.get(d.message_id);
  if (n && editingId !== d.message_id) {
    const stick = nearBottom();
    n.text.appendData(tail);
    if (stick) scrollDown();
  } else {
    updateMessage(d.message_id);
  }
}

export function dispatch(type, data) {
  switch (type) {
  case 'conversation.created':
  case 'conversation.updated':
    upsertConv(data);
    break;
  case 'conversation.deleted':
    removeConv(data.id, true);
    break;
  case 'message.created':
  case 'message.updated':
    if (data.conversation_id === currentId) {
      setMessage(data);
      updateMessage(data.id);
    }
    break;
  case 'message.deleted':
    if (data.conversation_id === currentId) dropMessage(data.id);
    break;
  case 'message.delta':
    applyDelta(data);
    break;
  default:
    break;
  }
}

// --- loading and showing ------------------------------------------------------

export async function loadConversations() {
  const items = await listAll('/conversations?limit=200');
  convs.clear();
  for (const c of items) convs.set(c.id, c);
  renderConvList();
}

// Everything again over REST: after `reset` or a long disconnect.
export async function reload() {
  await loadConversations();
  if (currentId) {
    if (convs.has(currentId)) await reloadMessages();
    else removeConv(currentId, true);
  }
}

// Shows conversation id (null: none) in the chat view.
export async function openConversation(id) {
  if (id === currentId) return;
  currentId = id;
  editingId = null;
  msgs.clear();
  nodes.clear();
  order = [];
  $('messages').replaceChildren();
  $('chat-view').classList.toggle('has-current', !!id);
  $('composer').hidden = !id;
  $('chat-placeholder').hidden = !!id;
  renderConvList();
  if (!id) return;
  await reloadMessages();
}

export function resetChat() {
  convs.clear();
  currentId = null;
  msgs.clear();
  nodes.clear();
  order = [];
  editingId = renamingId = null;
  $('messages').replaceChildren();
  renderConvList();
}

export function initChat() {
  $('new-conv').addEventListener('click', newConversation);
  $('composer').addEventListener('submit', send);
  $('input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('composer').requestSubmit();
    }
  });
  $('back').addEventListener('click', () => { location.hash = '#/'; });
  const saved = localStorage.getItem('mjs.model');
  if (saved) $('model').value = saved;
  $('model').addEventListener('change', () => localStorage.setItem('mjs.model', $('model').value.trim()));
}

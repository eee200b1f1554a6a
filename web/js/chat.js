// chat.js: the conversation list and the chat view.
//
// State is a copy of the server's, kept current by events and reloaded over
// REST when in doubt. Invariants:
// - The conversations and the open conversation's messages are mirrors
//   (mirror.js): every event, REST answer and list load is merged by the event
//   seq it reflects, so an answer that was in flight never undoes a newer event,
//   a deleted object never comes back, an object created while a list loads
//   stays, and applying anything twice changes nothing. Lists are shown in the
//   server's order (conversations by updated_at, messages by created_at, then id).
// - message.delta is applied by offset, in Unicode code points: appended when
//   offset equals the length we have, ignored when it ends within it (seen),
//   the new tail taken when it overlaps, and a hole (offset beyond our length,
//   or text for a message we do not hold while no load is in flight) reloads
//   the conversation's messages over REST.
// - Only the open conversation's messages are held; the others load on opening.

import { api, apiInto, listPages } from './api.js';
import { $, el, shortTime } from './dom.js';
import { t } from './i18n.js';
import { loadMarkdown, markdownReady, renderMarkdown } from './markdown.js';
import { Mirror, byCreated, byUpdatedDesc } from './mirror.js';
import { showNotice } from './notice.js';

const GENERATING = new Set(['created', 'pending', 'streaming']);

const convs = new Mirror(byUpdatedDesc);
let currentId = null;
const msgs = new Mirror(byCreated);   // the open conversation's messages
const nodes = new Map();        // message id → {li, text}
let editingId = null;
let editDraft = '';             // the edit box's text, kept across re-renders
let renamingId = null;
let renameDraft = '';           // the rename box's text, kept across re-renders
let reloadRunning = null;
let reloadAgain = false;

// --- conversations ---------------------------------------------------------

function renderConvList() {
  const list = $('conv-list');
  const items = convs.list().map((c) => {
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
            await apiInto(convs, 'PATCH', '/conversations/' + c.id, { title }, upsertConv);
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
      el('button', { type: 'button', class: 'icon rename', title: t('Rename'), 'aria-label': t('Rename'),
        onclick: () => { renamingId = c.id; renameDraft = c.title; renderConvList(); } }, '✎'),
      el('button', { type: 'button', class: 'icon delete', title: t('Delete'), 'aria-label': t('Delete'),
        onclick: () => deleteConv(c) }, '×'));
    return li;
  });
  list.replaceChildren(...items);
  $('conv-empty').hidden = convs.size > 0;
  const cur = currentId && convs.get(currentId);
  $('chat-title').textContent = cur ? cur.title : '';
  $('conv-settings').hidden = !cur;
  renderSettings(cur);
}

// The open conversation's system prompt and model: shown in the settings form
// (while nobody types in it) and as the model field's placeholder.
function renderSettings(cur) {
  const form = $('settings-form');
  if (!cur) {
    form.hidden = true;
    return;
  }
  $('model').placeholder = cur.model ? cur.model + ' ' + t('(this chat)') : defaultModelHint();
  if (!form.hidden && form.contains(document.activeElement)) return;
  $('system-prompt').value = cur.system_prompt || '';
  $('conv-model').value = cur.model || '';
}

function toggleSettings() {
  const form = $('settings-form');
  form.hidden = !form.hidden;
  $('conv-settings').setAttribute('aria-expanded', String(!form.hidden));
  if (!form.hidden) {
    renderSettings(convs.get(currentId));
    $('system-prompt').focus();
  }
}

async function saveSettings(event) {
  event.preventDefault();
  const id = currentId;
  const model = $('conv-model').value.trim();
  const body = { system_prompt: $('system-prompt').value, model: model || null };
  $('settings-save').disabled = true;
  try {
    await apiInto(convs, 'PATCH', '/conversations/' + id, body, (c, seq) => upsertConv(c, seq));
    $('settings-form').hidden = true;
    $('conv-settings').setAttribute('aria-expanded', 'false');
    renderSettings(convs.get(id));
  } catch (e) {
    showNotice('Could not save the settings: ' + e.message);
  } finally {
    $('settings-save').disabled = false;
  }
}

// c as of event seq (an event or a write's answer).
function upsertConv(c, seq) {
  if (convs.put(c, seq) && renamingId !== c.id) renderConvList();
}

async function deleteConv(c) {
  if (!window.confirm('Delete "' + c.title + '" and all its messages?')) return;
  try {
    await apiInto(convs, 'DELETE', '/conversations/' + c.id, undefined, (_, seq) => removeConv(c.id, false, seq));
  } catch (e) {
    if (e.status === 404) removeConv(c.id, false);
    else showNotice('Could not delete the conversation: ' + e.message);
  }
}

// Conversation id was deleted at event seq (elsewhere: not by this tab); no
// seq: the server said it is gone (a 404).
function removeConv(id, elsewhere, seq) {
  const held = seq === undefined ? convs.forget(id) : convs.remove(id, seq);
  if (!held && id !== currentId) return;
  if (renamingId === id) renamingId = null;
  if (id === currentId) {
    if (elsewhere) showNotice(t('This conversation was deleted in another tab or device.'));
    location.hash = '#/';
  }
  renderConvList();
}

export async function newConversation() {
  try {
    const { data: c } = await apiInto(convs, 'POST', '/conversations', {}, upsertConv);
    location.hash = '#/c/' + c.id;
  } catch (e) {
    showNotice('Could not create a conversation: ' + e.message);
  }
}

// --- messages ----------------------------------------------------------------

// m as of event seq, shown at once when it changed what the tab holds.
function setMessage(m, seq) {
  if (m.conversation_id === currentId && msgs.put(m, seq)) updateMessage(m.id);
}

function statusMark(m) {
  if (m.role !== 'assistant') return null;
  switch (m.status) {
  case 'created':
  case 'pending':
    return el('span', { class: 'mark spinner', role: 'status', 'aria-label': t(m.status === 'created' ? 'queued' : 'waiting for the first token'), title: m.status });
  case 'streaming':
    return el('span', { class: 'mark streaming', text: t('writing…') });
  case 'stopped':
    return el('span', { class: 'mark interrupted', text: t('interrupted') });
  case 'completed':
    return m.finish_reason === 'length' ? el('span', { class: 'mark cut', text: t('cut off'), title: t('the reply reached a length limit') }) : null;
  case 'failed':
    return el('span', { class: 'mark failed', text: t('failed') });
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

// A message's text in its element: an assistant's as Markdown once the
// libraries are there (markdown.js), else, and a user's always, as plain text.
// data-text holds the text as the server has it.
function paintContent(n, m) {
  if (n.content.dataset.text === m.content && n.content.dataset.md === String(markdownReady())) return;
  n.content.dataset.text = m.content;
  n.content.dataset.md = String(markdownReady());
  if (m.role === 'assistant' && markdownReady()) {
    n.content.classList.add('markdown');
    n.content.replaceChildren(renderMarkdown(m.content));
  } else {
    n.content.classList.remove('markdown');
    n.content.textContent = m.content;
  }
}

// Builds (or rebuilds) the element of message id, in place.
function renderMessage(id) {
  const m = msgs.get(id);
  if (!m) return;
  let n = nodes.get(id);
  if (!n) {
    const li = el('li', { class: 'msg', dataset: { id } });
    n = { li, content: el('div', { class: 'msg-content' }), thought: document.createTextNode(''), open: false };
    nodes.set(id, n);
  }
  const { li } = n;
  li.className = 'msg msg-' + m.role + ' status-' + m.status;
  li.dataset.status = m.status;
  li.dataset.role = m.role;
  paintContent(n, m);
  n.thought.data = m.reasoning || '';
  const content = n.content;
  // the reasoning, open while the model thinks, folded once the answer comes,
  // unless the user opened it (a click, not the open the render sets, counts)
  const thinking = m.status === 'streaming' && !m.content;
  const reasoning = m.reasoning ? el('details', { class: 'reasoning', open: n.open || thinking },
    el('summary', { text: t(thinking ? 'Thinking…' : 'Thoughts'),
      onclick: (e) => { n.open = !e.currentTarget.parentNode.open; } }),
    el('div', { class: 'reasoning-text' }, n.thought)) : null;
  const meta = el('div', { class: 'msg-meta' },
    el('span', { class: 'role', text: t(m.role === 'user' ? 'You' : 'AI') }),
    m.role === 'assistant' && m.model ? el('span', { class: 'model', text: m.model }) : null,
    statusMark(m),
    el('time', { datetime: m.created_at, text: shortTime(m.created_at) }));
  const actions = el('div', { class: 'msg-actions' },
    m.status === 'streaming' ? el('button', { type: 'button', class: 'stop', onclick: () => stopMessage(m.id) }, t('■ Stop')) : null,
    el('button', { type: 'button', class: 'link edit', onclick: () => startEdit(m.id) }, t('Edit')),
    el('button', { type: 'button', class: 'link delete', onclick: () => deleteMessage(m.id) }, t('Delete')));
  const parts = [meta];
  if (editingId === id) {
    const area = el('textarea', { class: 'edit-input', rows: 4, 'aria-label': 'edit message' });
    area.value = editDraft;
    area.addEventListener('input', () => { editDraft = area.value; });
    parts.push(area, el('div', { class: 'msg-actions' },
      el('button', { type: 'button', class: 'save', onclick: () => saveEdit(m.id, area.value) }, t('Save')),
      el('button', { type: 'button', class: 'link cancel', onclick: () => { editingId = null; renderMessage(m.id); } }, t('Cancel'))));
  } else {
    if (reasoning) parts.push(reasoning);
    parts.push(content);
    if (m.status === 'failed') {
      parts.push(el('p', { class: 'msg-error', text: m.error || t('the reply failed') }));
    } else if (m.error) {
      parts.push(el('p', { class: 'msg-note', text: m.error }));   // e.g. a reply cut at its length limit
    }
    parts.push(actions);
  }
  li.replaceChildren(...parts);
}

function renderMessages() {
  const box = $('messages');
  const stick = nearBottom();
  const order = msgs.list();
  for (const id of [...nodes.keys()]) if (msgs.get(id) === undefined) nodes.delete(id);
  for (const m of order) renderMessage(m.id);
  box.replaceChildren(...order.map((m) => nodes.get(m.id).li));
  if (stick) scrollDown();
}

// Shows message id's current state; a new one goes where the server's order
// puts it (the end, unless it arrived late).
function updateMessage(id) {
  const stick = nearBottom();
  const isNew = !nodes.has(id);
  renderMessage(id);
  if (isNew) {
    const order = msgs.list();
    const at = order.findIndex((m) => m.id === id);
    const next = order[at + 1] && nodes.get(order[at + 1].id);
    $('messages').insertBefore(nodes.get(id).li, next ? next.li : null);
  }
  if (stick || (isNew && !nodes.get(id).li.nextSibling)) scrollDown();
}

// One load of the open conversation's messages, merged by its seq with what
// the stream delivered meanwhile. Returns true when text showed a hole.
async function loadMessages(convId) {
  const ticket = msgs.begin();
  try {
    const holes = msgs.settlePages(ticket, await listPages('/conversations/' + convId + '/messages?limit=200'));
    if (holes) renderMessages();
    return !!(holes && holes.length);
  } finally {
    msgs.end(ticket);
  }
}

// Reloads the open conversation's messages; coalesces calls made meanwhile.
async function reloadMessages() {
  if (reloadRunning) { reloadAgain = true; return reloadRunning; }
  reloadRunning = (async () => {
    do {
      reloadAgain = false;
      const id = currentId;
      if (!id) break;
      try {
        if (await loadMessages(id)) reloadAgain = true;
      } catch (e) {
        if (id !== currentId) continue;   // another conversation opened meanwhile
        if (e.status === 404) removeConv(id, true);
        else showNotice('Could not load the messages: ' + e.message);
      }
    } while (reloadAgain);
    reloadRunning = null;
  })();
  return reloadRunning;
}

async function stopMessage(id) {
  try {
    await apiInto(msgs, 'POST', '/messages/' + id + '/stop', undefined, setMessage);
  } catch (e) {
    if (e.status !== 409) showNotice('Could not stop the reply: ' + e.message);
  }
}

function startEdit(id) {
  const m = msgs.get(id);
  if (!m) return;
  if (GENERATING.has(m.status)) {
    showNotice('This reply is still being generated: stop it or wait until it finishes, then edit it.');
    return;
  }
  editingId = id;
  editDraft = m.content;
  renderMessage(id);
  const area = nodes.get(id).li.querySelector('textarea');
  if (area) area.focus();
}

async function saveEdit(id, content) {
  if (!content.trim()) { showNotice('A message cannot be empty.'); return; }
  try {
    await apiInto(msgs, 'PATCH', '/messages/' + id, { content }, (m, seq) => {
      editingId = null;
      msgs.put(m, seq);
      renderMessage(id);
    });
  } catch (e) {
    if (e.status === 409) showNotice('This reply is still being generated: stop it or wait until it finishes, then edit it.');
    else showNotice('Could not save the edit: ' + e.message);
  }
}

async function deleteMessage(id) {
  try {
    await apiInto(msgs, 'DELETE', '/messages/' + id, undefined, (_, seq) => dropMessage(id, seq));
  } catch (e) {
    if (e.status === 409) showNotice('This reply is still being generated: stop it or wait until it finishes, then delete it.');
    else if (e.status === 404) dropMessage(id);
    else showNotice('Could not delete the message: ' + e.message);
  }
}

// Message id was deleted at event seq; no seq: the server said it is gone (a 404).
function dropMessage(id, seq) {
  if (!(seq === undefined ? msgs.forget(id) : msgs.remove(id, seq))) return;
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
    await apiInto(msgs, 'POST', '/conversations/' + currentId + '/messages', body, (r, seq) => {
      for (const m of [r.user_message, r.assistant_message]) setMessage(m, seq);
    });
    input.value = '';
  } catch (e) {
    showNotice(t('Could not send') + ': ' + e.message);
  } finally {
    $('send').disabled = false;
    input.focus();
  }
}

// --- events --------------------------------------------------------------------

function applyDelta(d, seq) {
  if (d.conversation_id !== currentId) return;
  const field = d.part === 'reasoning' ? 'reasoning' : 'content';
  const r = msgs.append(d.message_id, seq, field, d.offset, d.text);
  if (r === 'hole' || (r === 'unknown' && !reloadRunning)) {
    reloadMessages();   // a load in flight re-applies what it did not hold
    return;
  }
  if (r !== 'applied') return;
  const n = nodes.get(d.message_id);
  if (n && editingId !== d.message_id && (field === 'content' || n.thought.parentNode)) {
    const stick = nearBottom();
    const m = msgs.get(d.message_id);
    if (field === 'content' && !n.content.dataset.text && m.reasoning) {
      updateMessage(d.message_id);   // the first answer text: the thoughts fold away
    } else if (field === 'content') {
      paintContent(n, m);
    } else {
      n.thought.data = m.reasoning;
    }
    if (stick) scrollDown();
  } else {
    updateMessage(d.message_id);
  }
}

// Every event the stream delivers, of any type, first: the mirrors keep
// tombstones until the stream has passed them.
export function heard(seq) {
  convs.heard(seq);
  msgs.heard(seq);
}

export function dispatch(type, data, seq) {
  switch (type) {
  case 'conversation.created':
  case 'conversation.updated':
    upsertConv(data, seq);
    break;
  case 'conversation.deleted':
    removeConv(data.id, true, seq);
    break;
  case 'message.created':
  case 'message.updated':
    setMessage(data, seq);
    break;
  case 'message.deleted':
    if (data.conversation_id === currentId) dropMessage(data.id, seq);
    break;
  case 'message.delta':
    applyDelta(data, seq);
    break;
  default:
    break;
  }
}

// --- loading and showing ------------------------------------------------------

// The whole list over REST, merged by seq with what the stream delivers meanwhile.
export async function loadConversations() {
  const ticket = convs.begin();
  try {
    convs.settlePages(ticket, await listPages('/conversations?limit=200'));
  } finally {
    convs.end(ticket);
  }
  renderConvList();
}

// Everything again over REST: after `reset` or a long disconnect.
export async function reload() {
  await loadConversations();
  if (currentId) {
    if (convs.get(currentId)) await reloadMessages();
    else removeConv(currentId, true);
  }
}

// Shows conversation id (null: none) in the chat view.
export async function openConversation(id) {
  if (id === currentId) return;
  currentId = id;
  editingId = null;
  $('settings-form').hidden = true;
  $('conv-settings').setAttribute('aria-expanded', 'false');
  msgs.clear();
  nodes.clear();
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
  editingId = renamingId = null;
  $('messages').replaceChildren();
  renderConvList();
}

export function initChat() {
  loadMarkdown().then((ok) => { if (ok) renderMessages(); });
  $('new-conv').addEventListener('click', newConversation);
  $('conv-settings').addEventListener('click', toggleSettings);
  $('settings-form').addEventListener('submit', saveSettings);
  $('settings-cancel').addEventListener('click', toggleSettings);
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

// The models the server offers (GET /api/models), as the picker's choices; the
// field stays free text for servers whose upstream takes any model name.
let defaultModel = '';

function defaultModelHint() {
  return defaultModel ? defaultModel + ' ' + t('(default)') : t('server default');
}

// Everything this view shows, again, in the current language.
export function relabel() {
  renderConvList();
  renderMessages();
}

export async function loadModels() {
  try {
    const { items, default: def } = await api('GET', '/models');
    $('models').replaceChildren(...items.map((m) => el('option', { value: m.name, label: m.name + ' · ' + m.upstream })));
    if (def) defaultModel = def;
    renderSettings(currentId && convs.get(currentId));
  } catch {
    // not fatal: the field still takes a name
  }
}

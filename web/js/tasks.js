// tasks.js: the image/video tasks view: a form, a grid of live cards and the
// trash.
//
// Invariants:
// - `active` mirrors the tasks not in the trash, `trash` those in it (loaded the
//   first time the trash is shown, then kept current by events too); a task is
//   in at most one of them. Both are mirrors (mirror.js): events, answers and
//   page loads merge by the event seq they reflect, so an answer in flight never
//   undoes a newer event, a task deleted meanwhile stays out of the grid, and
//   applying anything twice changes nothing. The grid is in the server's order
//   (newest first, then id).
// - A card is built once per task and updated in place, so an image is not
//   reloaded by a progress step or a blur toggle.

import { t as tr } from './i18n.js';
import { apiSeq, apiInto } from './api.js';
import { $, el } from './dom.js';
import { Mirror, byCreatedDesc } from './mirror.js';
import { showNotice } from './notice.js';

const active = new Mirror(byCreatedDesc);
const trash = new Mirror(byCreatedDesc);
const both = [active, trash];   // a task's answer may move it from one to the other
let trashLoaded = false;
let trashLoading = false;
const loads = { active: 0, trash: 0 };   // first-page loads started: a later page of an older one is stale
let view = 'active';
const next = { active: null, trash: null };
const cards = new Map();     // task id → {li, ...parts, resultKey}

function shown() { return view === 'active' ? active : trash; }

function card(t) {
  let c = cards.get(t.id);
  if (!c) {
    c = {
      li: el('li', { class: 'task', dataset: { id: t.id } }),
      media: el('div', { class: 'task-media' }),
      kind: el('span', { class: 'task-kind' }),
      status: el('span', { class: 'task-status' }),
      bar: el('div', { class: 'bar' }),
      pct: el('span', { class: 'pct' }),
      prompt: el('p', { class: 'task-prompt' }),
      error: el('p', { class: 'task-error' }),
      actions: el('div', { class: 'task-actions' }),
      resultKey: null,
    };
    c.progress = el('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 }, c.bar);
    c.li.append(c.media, el('div', { class: 'task-info' }, c.kind, c.status, c.pct), c.progress,
      c.prompt, c.error, c.actions);
    cards.set(t.id, c);
  }
  const blurred = !!t.blurred;
  c.li.dataset.status = t.status;
  c.li.dataset.blurred = String(blurred);
  c.li.classList.toggle('blurred', blurred);
  c.kind.textContent = tr(t.kind);
  c.status.textContent = tr(t.status);
  c.status.className = 'task-status status-' + t.status;
  c.bar.style.width = t.progress + '%';
  c.progress.setAttribute('aria-valuenow', String(t.progress));
  c.pct.textContent = t.progress + '%';
  c.prompt.textContent = t.prompt;
  c.error.textContent = t.error || '';
  c.error.hidden = !t.error;
  const key = JSON.stringify(t.result || null) + t.kind;
  if (key !== c.resultKey) {
    c.resultKey = key;
    // results are http(s) URLs, or this task's own /api/tasks/{id}/content (a file the
    // server fetches with the upstream's key for us): nothing else is put in the page
    const own = '/api/tasks/' + t.id + '/content';
    const urls = Array.isArray(t.result) ? t.result.filter((u) => /^https?:\/\//i.test(u) || u === own) : [];
    if (!urls.length) {
      c.media.replaceChildren(el('div', { class: 'task-placeholder', text: t.status === 'failed' ? '✕ ' + tr(t.kind) : tr(t.kind) + '…' }));
    } else if (t.kind === 'image') {
      c.media.replaceChildren(...urls.map((u) => el('a', { href: u, target: '_blank', rel: 'noopener' },
        el('img', { src: u, alt: t.prompt, loading: 'lazy' }))));
    } else {
      // our own route plays in the card (the page's policy allows media from the site
      // only), fetched when the user plays it (preload none: a grid of videos must not
      // start a fetch from the upstream each); another site's video opens in a tab
      c.media.replaceChildren(...urls.map((u) => (u === own
        ? el('video', { class: 'task-video', src: u, controls: true, preload: 'none' })
        : el('a', { class: 'video-link', href: u, target: '_blank', rel: 'noopener', text: tr('▶ Open video') }))));
    }
  }
  if (t.deleted_at) {
    c.actions.replaceChildren(el('button', { type: 'button', class: 'restore', onclick: () => restoreTask(t.id) }, tr('Restore')));
  } else {
    c.actions.replaceChildren(
      el('button', { type: 'button', class: 'blur-toggle', 'aria-pressed': String(blurred), onclick: () => setBlur(t.id, !blurred) }, tr(blurred ? 'Unblur' : 'Blur')),
      el('button', { type: 'button', class: 'delete', onclick: () => deleteTask(t.id) }, tr('Delete')));
  }
  return c.li;
}

// Everything this view shows, again, in the current language.
export function relabel() {
  render();
}

function render() {
  const items = shown().list();
  $('task-grid').replaceChildren(...items.map(card));
  $('task-empty').hidden = items.length > 0;
  $('task-empty').textContent = tr(view === 'trash' ? 'The trash is empty.' : 'No tasks yet.');
  $('task-more').hidden = !next[view];
  $('show-active').setAttribute('aria-pressed', String(view === 'active'));
  $('show-trash').setAttribute('aria-pressed', String(view === 'trash'));
  for (const id of [...cards.keys()]) if (!active.get(id) && !trash.get(id)) cards.delete(id);
}

// Task t as of event seq: into the grid or the trash, out of the other.
function put(t, seq) {
  if (t.deleted_at) {
    active.remove(t.id, seq);
    trash.put(t, seq);
  } else {
    trash.remove(t.id, seq);
    active.put(t, seq);
  }
  render();
}

// One page of the grid or the trash; reset: the first page, which replaces
// what the tab held (by seq: newer events stay), later pages only add (and a
// later page begun before a newer first page is dropped).
async function loadPage(which, reset) {
  const mirror = which === 'active' ? active : trash;
  let path = '/tasks?limit=50' + (which === 'trash' ? '&deleted=1' : '');
  if (!reset && next[which]) path += '&cursor=' + encodeURIComponent(next[which]);
  const gen = reset ? ++loads[which] : loads[which];
  const ticket = mirror.begin();
  if (which === 'trash') trashLoading = true;
  try {
    const { data, seq } = await apiSeq('GET', path);
    if (gen !== loads[which] || mirror.settle(ticket, seq, data.items, reset) === null) return;
    next[which] = data.next;
    if (which === 'trash') trashLoaded = true;
  } finally {
    mirror.end(ticket);
    if (which === 'trash') trashLoading = false;
  }
  render();
}

async function setBlur(id, blurred) {
  try {
    await apiInto(both, 'PATCH', '/tasks/' + id, { blurred }, put);
  } catch (e) {
    showNotice('Could not change the blur: ' + e.message);
  }
}

async function deleteTask(id) {
  try {
    await apiInto(both, 'DELETE', '/tasks/' + id, undefined, (_, seq) => moveToTrash(id, seq));
  } catch (e) {
    showNotice('Could not delete the task: ' + e.message);
  }
}

// Task id went to the trash at event seq (task.deleted carries only the id):
// out of the grid at once, into the trash as the server has it (fetched when
// the trash is loaded or loading; the synthesized entry is replaced by it).
async function moveToTrash(id, seq) {
  const had = active.get(id);
  active.remove(id, seq);
  if (had) trash.put({ ...had, deleted_at: had.deleted_at || new Date().toISOString() }, seq);
  render();
  if (!trashLoaded && !trashLoading) return;
  try {
    await apiInto(both, 'GET', '/tasks/' + id, undefined, put);
  } catch (e) {
    if (e.status === 404) { trash.forget(id); render(); }
  }
}

async function restoreTask(id) {
  try {
    await apiInto(both, 'POST', '/tasks/' + id + '/restore', undefined, put);
  } catch (e) {
    if (e.status === 409) showNotice('This task is not in the trash any more.');
    else showNotice('Could not restore the task: ' + e.message);
  }
}

async function create(event) {
  event.preventDefault();
  const prompt = $('task-prompt').value;
  if (!prompt.trim()) return;
  $('task-create').disabled = true;
  try {
    await apiInto(both, 'POST', '/tasks', { kind: $('task-kind').value, prompt }, put);
    $('task-prompt').value = '';
    if (view !== 'active') showView('active');
  } catch (e) {
    showNotice('Could not create the task: ' + e.message);
  } finally {
    $('task-create').disabled = false;
  }
}

async function showView(which) {
  view = which;
  render();
  if (which === 'trash' && !trashLoaded) {
    try {
      await loadPage('trash', true);
    } catch (e) {
      showNotice('Could not load the trash: ' + e.message);
    }
  }
}

// Every event the stream delivers, of any type (mirror.js keeps tombstones
// until the stream has passed them).
export function heard(seq) {
  active.heard(seq);
  trash.heard(seq);
}

export function dispatch(type, data, seq) {
  switch (type) {
  case 'task.created':
  case 'task.updated':
  case 'task.restored':
    put(data, seq);
    break;
  case 'task.deleted':
    moveToTrash(data.id, seq);
    break;
  default:
    break;
  }
}

export async function loadTasks() {
  next.active = null;
  await loadPage('active', true);
  if (trashLoaded) {
    next.trash = null;
    await loadPage('trash', true);
  }
}

export function resetTasks() {
  active.clear();
  trash.clear();
  cards.clear();
  trashLoaded = false;
  view = 'active';
  next.active = next.trash = null;
  render();
}

export function initTasks() {
  $('task-form').addEventListener('submit', create);
  $('show-active').addEventListener('click', () => showView('active'));
  $('show-trash').addEventListener('click', () => showView('trash'));
  $('task-more').addEventListener('click', async () => {
    try {
      await loadPage(view, false);
    } catch (e) {
      showNotice('Could not load more: ' + e.message);
    }
  });
}

// tasks.js: the image/video tasks view: a form, a grid of live cards and the
// trash.
//
// Invariants:
// - `active` holds tasks not in the trash, `trash` those in it (loaded the
//   first time the trash is shown, then kept current by events too); a task is
//   in at most one of them. Applying an event twice changes nothing.
// - A card is built once per task and updated in place, so an image is not
//   reloaded by a progress step or a blur toggle.

import { api } from './api.js';
import { $, el } from './dom.js';
import { showNotice } from './notice.js';

const active = new Map();
const trash = new Map();
let trashLoaded = false;
let view = 'active';
const next = { active: null, trash: null };
const cards = new Map();     // task id → {li, ...parts, resultKey}

function shown() { return view === 'active' ? active : trash; }

function newer(a, b) { return a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0; }

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
  c.kind.textContent = t.kind;
  c.status.textContent = t.status;
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
    const urls = Array.isArray(t.result) ? t.result.filter((u) => /^https?:\/\//i.test(u)) : [];
    if (!urls.length) {
      c.media.replaceChildren(el('div', { class: 'task-placeholder', text: t.status === 'failed' ? 'no ' + t.kind : t.kind + '…' }));
    } else if (t.kind === 'image') {
      c.media.replaceChildren(...urls.map((u) => el('a', { href: u, target: '_blank', rel: 'noopener' },
        el('img', { src: u, alt: t.prompt, loading: 'lazy' }))));
    } else {
      c.media.replaceChildren(...urls.map((u) => el('a', { class: 'video-link', href: u, target: '_blank', rel: 'noopener', text: '▶ Open video' })));
    }
  }
  if (t.deleted_at) {
    c.actions.replaceChildren(el('button', { type: 'button', class: 'restore', onclick: () => restoreTask(t.id) }, 'Restore'));
  } else {
    c.actions.replaceChildren(
      el('button', { type: 'button', class: 'blur-toggle', 'aria-pressed': String(blurred), onclick: () => setBlur(t.id, !blurred) }, blurred ? 'Unblur' : 'Blur'),
      el('button', { type: 'button', class: 'delete', onclick: () => deleteTask(t.id) }, 'Delete'));
  }
  return c.li;
}

function render() {
  const items = [...shown().values()].sort(newer);
  $('task-grid').replaceChildren(...items.map(card));
  $('task-empty').hidden = items.length > 0;
  $('task-empty').textContent = view === 'trash' ? 'The trash is empty.' : 'No tasks yet.';
  $('task-more').hidden = !next[view];
  $('show-active').setAttribute('aria-pressed', String(view === 'active'));
  $('show-trash').setAttribute('aria-pressed', String(view === 'trash'));
  for (const id of [...cards.keys()]) if (!active.has(id) && !trash.has(id)) cards.delete(id);
}

function put(t) {
  if (t.deleted_at) {
    active.delete(t.id);
    if (trashLoaded) trash.set(t.id, t);
  } else {
    trash.delete(t.id);
    active.set(t.id, t);
  }
  render();
}

async function loadPage(which, reset) {
  const map = which === 'active' ? active : trash;
  let path = '/tasks?limit=50' + (which === 'trash' ? '&deleted=1' : '');
  if (!reset && next[which]) path += '&cursor=' + encodeURIComponent(next[which]);
  const page = await api('GET', path);
  if (reset) map.clear();
  for (const t of page.items) map.set(t.id, t);
  next[which] = page.next;
  if (which === 'trash') trashLoaded = true;
  render();
}

async function setBlur(id, blurred) {
  try {
    put(await api('PATCH', '/tasks/' + id, { blurred }));
  } catch (e) {
    showNotice('Could not change the blur: ' + e.message);
  }
}

async function deleteTask(id) {
  try {
    await api('DELETE', '/tasks/' + id);
    await moveToTrash(id);
  } catch (e) {
    showNotice('Could not delete the task: ' + e.message);
  }
}

async function moveToTrash(id) {
  const had = active.get(id);
  active.delete(id);
  render();
  if (!trashLoaded) return;
  if (had) trash.set(id, { ...had, deleted_at: had.deleted_at || new Date().toISOString() });
  try {
    put(await api('GET', '/tasks/' + id));
  } catch (e) {
    if (e.status === 404) { trash.delete(id); render(); }
  }
}

async function restoreTask(id) {
  try {
    put(await api('POST', '/tasks/' + id + '/restore'));
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
    put(await api('POST', '/tasks', { kind: $('task-kind').value, prompt }));
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

export function dispatch(type, data) {
  switch (type) {
  case 'task.created':
  case 'task.updated':
  case 'task.restored':
    put(data);
    break;
  case 'task.deleted':
    moveToTrash(data.id);
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

// app.js: the entry point. Logs in, loads the state, opens the event stream
// and routes between the views (#/ and #/c/ID: chat; #/tasks: tasks).
//
// Start-up order matters: GET /api/me first (its event_id is the replay point),
// then the state over REST, then the stream from that id. A change committed
// while the state loads is then either in what was loaded or replayed by the
// stream (or both: applying is idempotent), never lost.

import { api, setUnauthorizedHandler } from './api.js';
import { $ } from './dom.js';
import { language, setLanguage, t, translatePage } from './i18n.js';
import { showNotice, hideNotice } from './notice.js';
import { startStream, stopStream } from './stream.js';
import * as chat from './chat.js';
import * as tasks from './tasks.js';

let me = null;
let reloading = null;

function show(viewId) {
  for (const id of ['login-view', 'chat-view', 'tasks-view']) $(id).hidden = id !== viewId;
  $('topbar').hidden = viewId === 'login-view';
  $('nav-chat').classList.toggle('active', viewId === 'chat-view');
  $('nav-tasks').classList.toggle('active', viewId === 'tasks-view');
}

function route() {
  if (!me) return;
  const hash = location.hash || '#/';
  if (hash === '#/tasks') {
    show('tasks-view');
    return;
  }
  show('chat-view');
  const m = /^#\/c\/([0-9a-fA-F-]{36})$/.exec(hash);
  chat.openConversation(m ? m[1] : null);
}

function showLogin(message) {
  me = null;
  stopStream();
  chat.resetChat();
  tasks.resetTasks();
  show('login-view');
  const err = $('login-error');
  err.textContent = message || '';
  err.hidden = !message;
}

async function reloadAll(reason) {
  if (reloading) return reloading;
  reloading = (async () => {
    try {
      await Promise.all([chat.reload(), tasks.loadTasks()]);
    } catch (e) {
      showNotice('Could not reload (' + reason + '): ' + e.message);
    } finally {
      reloading = null;
    }
  })();
  return reloading;
}

// The tab's copy belongs to a history the database lost (a failover to a
// standby that had not received the newest commits): drop it and start over.
// The first time at once; when it repeats within a minute (REST and the
// stream briefly on different servers mid-failover, or the server not
// answering), after 1 s, then twice as long each time, at most 30 s.
const RESTART_WINDOW_MS = 60000;
const RESTART_DELAY_MAX_MS = 30000;
let restartDelay = 0;
let lastRestart = 0;

async function restartAll(reason) {
  console.warn('mjs: starting over: ' + reason);
  stopStream();
  chat.resetChat();
  tasks.resetTasks();
  const now = Date.now();
  restartDelay = now - lastRestart < RESTART_WINDOW_MS
    ? Math.min(Math.max(restartDelay * 2, 1000), RESTART_DELAY_MAX_MS) : 0;
  lastRestart = now;
  if (restartDelay) await new Promise((resolve) => setTimeout(resolve, restartDelay));
  await enter(true);
}

function dispatch(type, data, seq) {
  chat.heard(seq);
  tasks.heard(seq);
  if (type.startsWith('task.')) tasks.dispatch(type, data, seq);
  else chat.dispatch(type, data, seq);
}

// again: a start-over of a logged-in tab, which keeps trying while the
// server does not answer (mid-failover) instead of showing the login form.
async function enter(again = false) {
  try {
    me = await api('GET', '/me');
  } catch (e) {
    if (e.status === 401) showLogin('');
    else if (again) restartAll('the server is not answering (' + e.message + ')');
    else showLogin('The server is not answering (' + e.message + '); reload the page to try again.');
    return;
  }
  $('whoami').textContent = me.username;
  try {
    await Promise.all([chat.loadConversations(), tasks.loadTasks(), chat.loadModels()]);
  } catch (e) {
    showNotice('Could not load everything: ' + e.message);
  }
  startStream(me.event_id ?? String(me.event_seq), { dispatch, reload: reloadAll, restart: restartAll });
  route();
}

async function login(register) {
  const form = $('login-form');
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  if (!username || !password) {
    showLogin(t('Enter a username and a password.'));
    return;
  }
  try {
    if (register) await api('POST', '/auth/register', { username, password });
    await api('POST', '/auth/login', { username, password });
  } catch (e) {
    showLogin(e.message);
    return;
  }
  form.elements.password.value = '';
  hideNotice();
  await enter();
}

async function logout() {
  try {
    await api('POST', '/auth/logout');
  } catch (e) {
    // the session is gone either way
  }
  showLogin('');
}

function init() {
  translatePage();
  $('lang').value = language();
  $('lang').addEventListener('change', () => {
    setLanguage($('lang').value);
    chat.relabel();
    tasks.relabel();
    $('conn').textContent = t($('conn').dataset.state === 'reconnecting' ? 'reconnecting…' : $('conn').dataset.state);
  });
  setUnauthorizedHandler(() => { if (me) showLogin(t('Your session has ended; log in again.')); });
  $('login-form').addEventListener('submit', (e) => { e.preventDefault(); login(false); });
  $('register').addEventListener('click', () => login(true));
  $('logout').addEventListener('click', logout);
  $('notice-close').addEventListener('click', hideNotice);
  window.addEventListener('hashchange', route);
  chat.initChat();
  tasks.initTasks();
  enter();
}

init();

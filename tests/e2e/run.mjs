#!/usr/bin/env node
// tests/e2e/run.mjs: the web client end to end, in Debian's chromium driven by
// playwright-core, against a running stack (dev/up --detach).
//
//   MJS_STATE_DIR=/tmp/mjs-x node tests/e2e/run.mjs     (or MJS_URL=http://127.0.0.1:PORT)
//
// Three tabs: A1 and A2 are two pages of one browser context (one user, two
// tabs), B is another context (a second user). Each step asserts what a user
// sees in the DOM, waits on conditions with deadlines (never fixed sleeps),
// saves a screenshot of every tab it touched under the artifacts directory
// (MJS_E2E_ARTIFACTS, default tests/e2e/artifacts/) and fails on any console
// error or uncaught page error that it did not announce as expected. The steps
// build on each other: after a failure the rest are not run.
// Exit status: 0 when every step passed.

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const REPO = join(here, '..', '..');
const BASE = stackUrl();
const FAKE_URL = stackVar('MJS_FAKE_URL') || 'http://127.0.0.1:0';	// the fake upstream
const ARTIFACTS = process.env.MJS_E2E_ARTIFACTS || join(here, 'artifacts');
const CHROMIUM = process.env.MJS_CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = 15000;
const REPLY_TOKENS = 300;
const REPLY_MODEL = `fake:tps=20:tokens=${REPLY_TOKENS}`;   // 15 s of streaming, each token "tok "
const LONG_MODEL = 'fake:tps=20:tokens=400';

// A variable of the stack's env file (dev/up), or of the environment.
function stackVar(name) {
  if (process.env[name]) return process.env[name];
  const dir = process.env.MJS_STATE_DIR;
  if (!dir) return '';
  const m = new RegExp(`^${name}='([^']*)'$`, 'm').exec(readFileSync(join(dir, 'env'), 'utf8'));
  return m ? m[1] : '';
}

function stackUrl() {
  if (process.env.MJS_URL) return process.env.MJS_URL.replace(/\/$/, '');
  const dir = process.env.MJS_STATE_DIR;
  if (!dir) throw new Error('set MJS_STATE_DIR (a dev/up state directory) or MJS_URL');
  const env = readFileSync(join(dir, 'env'), 'utf8');
  const m = /^MJS_URL='([^']*)'$/m.exec(env);
  if (!m) throw new Error('no MJS_URL in ' + join(dir, 'env'));
  return m[1];
}

// --- the harness ------------------------------------------------------------------

const problems = [];            // console errors and page errors not expected
let shotNo = 0;

class Tab {
  constructor(label, page) {
    this.label = label;
    this.page = page;
    this.allowed = [];          // [{status, path} | {text: RegExp}]: errors a step expects
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const url = msg.location().url || '';
      const status = /status of (\d+)/.exec(msg.text());
      if (status && this.allowed.some((a) => String(a.status) === status[1] && url.includes(a.path))) return;
      if (this.allowed.some((a) => a.text && a.text.test(msg.text()))) return;
      problems.push(`${label}: console error: ${msg.text()} ${url}`);
    });
    page.on('pageerror', (err) => problems.push(`${label}: page error: ${err.message}`));
    page.on('dialog', async (d) => {
      if (d.type() === 'confirm' && this.acceptConfirm) {
        this.acceptConfirm = false;
        await d.accept();
        return;
      }
      problems.push(`${label}: unexpected ${d.type()} dialog: ${d.message()}`);
      await d.dismiss();
    });
  }

  async shot(name) {
    const file = join(ARTIFACTS, `${String(++shotNo).padStart(2, '0')}-${name}-${this.label}.png`);
    await this.page.screenshot({ path: file, fullPage: false });
  }
}

// poll(fn, what): fn's first truthy value, or an error naming `what` after the deadline.
async function poll(fn, what, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${String(last)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function assert(cond, what) {
  if (!cond) throw new Error('assertion failed: ' + what);
}

const results = [];
let failedStep = null;

async function step(name, tabs, fn) {
  if (failedStep) {
    results.push(`SKIP ${name} (after ${failedStep} failed)`);
    return;
  }
  const t0 = Date.now();
  let error = null;
  try {
    await fn();
    if (problems.length) throw new Error('errors in the page:\n  ' + problems.join('\n  '));
  } catch (e) {
    error = e;
  }
  for (const tab of tabs) {
    try { await tab.shot(name); } catch (e) { /* a closed page has no screenshot */ }
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (error) {
    failedStep = name;
    results.push(`FAIL ${name} (${secs}s): ${error.message}`);
    console.log(`FAIL ${name} (${secs}s)\n${error.stack || error.message}`);
  } else {
    results.push(`PASS ${name} (${secs}s)`);
    console.log(`PASS ${name} (${secs}s)`);
  }
  problems.length = 0;
}

// --- what a user does and sees ------------------------------------------------------

const msgSel = (id) => `li.msg[data-id="${id}"]`;

// A message's text as the server has it (an answer shows as Markdown: its
// element's data-text keeps the text itself).
async function text(tab, id) {
  return tab.page.locator(msgSel(id) + ' .msg-content').getAttribute('data-text', { timeout: 2000 });
}

async function status(tab, id) {
  return tab.page.locator(msgSel(id)).getAttribute('data-status', { timeout: 2000 });
}

async function register(tab, username, password) {
  tab.allowed.push({ status: 401, path: '/api/me' });   // the first look finds no session
  await tab.page.goto(BASE + '/');
  await tab.page.locator('#login-form').waitFor();
  await tab.page.fill('input[name=username]', username);
  await tab.page.fill('input[name=password]', password);
  await tab.page.click('#register');
  await tab.page.locator('#whoami', { hasText: username }).waitFor();
  await poll(async () => (await tab.page.getAttribute('#conn', 'data-state')) === 'live', `${tab.label}'s stream live`);
  tab.allowed = [];
}

async function openApp(tab, hash = '#/') {
  await tab.page.goto(BASE + '/' + hash);
  await poll(async () => (await tab.page.getAttribute('#conn', 'data-state')) === 'live', `${tab.label}'s stream live`);
}

// Watches message id in a tab until its text has grown `times` times while
// streaming: the reply is visibly streaming there, not appearing at once.
async function seesGrowing(tab, id, times) {
  let last = -1;
  let grew = 0;
  await poll(async () => {
    const [t, s] = [await text(tab, id), await status(tab, id)];
    if (s === 'streaming' && t.length > last) {
      if (last >= 0) grew++;
      last = t.length;
    }
    assert(s !== 'completed' || grew >= times, `${tab.label}: the reply completed before it was seen growing`);
    return grew >= times;
  }, `${tab.label} to see the reply grow ${times} times`);
}

async function send(tab, content, model) {
  await tab.page.fill('#model', model);
  await tab.page.fill('#input', content);
  const before = await tab.page.locator('li.msg-assistant').count();
  await tab.page.click('#send');
  await poll(async () => (await tab.page.locator('li.msg-assistant').count()) > before, 'the assistant message');
  return tab.page.locator('li.msg-assistant').last().getAttribute('data-id');
}

async function convTitles(tab) {
  return tab.page.locator('#conv-list .conv-title').allTextContents();
}

// Runs a bash script with dev/lib.sh and the stack's env file sourced (to stop
// and start its processes, or psql); MJS_STATE_DIR must be set.
function stackShell(script, vars = {}) {
  return execFileSync('bash', ['-c', `set -e; . "${REPO}/dev/lib.sh"; . "$MJS_STATE_DIR/env"; ${script}`],
    { env: { ...process.env, ...vars }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

const taskSel = (id) => `#task-grid li.task[data-id="${id}"]`;
// The ids of the cards in a tab's grid; a new task is the id not there before
// its create was clicked (the grid may already hold older cards).
const taskIds = (tab) => tab.page.$$eval('#task-grid li.task', (lis) => lis.map((li) => li.dataset.id));

// --- the API from outside the browser (the "other device" of the race steps) --------

// A REST client with a context's session cookie: what another device of the user does.
async function apiClient(ctx) {
  const cookie = (await ctx.cookies(BASE)).map((c) => `${c.name}=${c.value}`).join('; ');
  return async (method, path, body) => {
    const res = await fetch(BASE + '/api' + path, {
      method,
      headers: body === undefined ? { cookie } : { cookie, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
    return text ? JSON.parse(text) : null;
  };
}

async function listAllApi(call, path) {
  const items = [];
  for (let cursor = null; ;) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await call('GET', path + (cursor ? sep + 'cursor=' + encodeURIComponent(cursor) : ''));
    items.push(...page.items);
    if (!page.next) return items;
    cursor = page.next;
  }
}

// What a tab shows: the conversation list, the open chat's messages and the
// task grid, each in the order on screen.
async function shown(tab) {
  return tab.page.evaluate(() => ({
    convs: [...document.querySelectorAll('#conv-list li.conv')].map((li) =>
      [li.dataset.id, li.querySelector('.conv-title')?.textContent ?? null]),
    msgs: [...document.querySelectorAll('#messages li.msg')].map((li) =>
      [li.dataset.id, li.dataset.role, li.dataset.status, li.querySelector('.msg-content')?.dataset.text ?? null]),
    tasks: [...document.querySelectorAll('#task-grid li.task')].map((li) => [li.dataset.id, li.dataset.status]),
    open: /^#\/c\/([0-9a-f-]{36})$/.exec(location.hash)?.[1] ?? null,
  }));
}

// What the API lists for what the tab has open, in the shape of shown().
async function listed(call, open) {
  const convs = (await listAllApi(call, '/conversations?limit=200')).map((c) => [c.id, c.title]);
  const msgs = open ? (await listAllApi(call, `/conversations/${open}/messages`))
    .map((m) => [m.id, m.role, m.status, m.content]) : [];
  const tasks = (await call('GET', '/tasks?limit=50')).items.map((t) => [t.id, t.status]);
  return { convs, msgs, tasks, open };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- the scenarios ---------------------------------------------------------------------

async function main() {
  rmSync(ARTIFACTS, { recursive: true, force: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  const args = ['--disable-dev-shm-usage', '--disable-gpu'];
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args, timeout: 60000 });
  const t0 = Date.now();
  try {
    await scenarios(browser);
  } finally {
    await browser.close();
  }
  console.log('\n' + results.join('\n'));
  console.log(`e2e: ${results.filter((r) => r.startsWith('PASS')).length} of ${results.length} steps passed in ${((Date.now() - t0) / 1000).toFixed(1)}s; screenshots in ${ARTIFACTS}`);
  return results.every((r) => r.startsWith('PASS'));
}

async function scenarios(browser) {
  const suffix = Math.random().toString(16).slice(2, 8);
  const desktop = { viewport: { width: 1280, height: 800 } };
  const ctxA = await browser.newContext(desktop);
  const ctxB = await browser.newContext(desktop);
  const A1 = new Tab('A1', await ctxA.newPage());
  const A2 = new Tab('A2', await ctxA.newPage());
  const B = new Tab('B', await ctxB.newPage());
  let convId = null;
  let replyId = null;

  await step('login', [A1, A2, B], async () => {
    await register(A1, 'alice_' + suffix, 'correct horse battery');
    await openApp(A2);
    await register(B, 'bob_' + suffix, 'another good password');
    assert((await A2.page.textContent('#whoami')) === 'alice_' + suffix, 'tab 2 is logged in as the same user');
  });

  await step('security-headers-and-csp', [A1], async () => {
    // The page runs under the policy (a violation is a console error, which fails any step).
    const res = await fetch(BASE + '/');
    const csp = res.headers.get('content-security-policy') || '';
    for (const want of ["script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'"]) {
      assert(csp.includes(want), `the page's Content-Security-Policy has ${want} (got: ${csp})`);
    }
    assert(res.headers.get('x-content-type-options') === 'nosniff', 'X-Content-Type-Options: nosniff');
    assert(res.headers.get('referrer-policy') === 'same-origin', 'Referrer-Policy: same-origin');
    const api = await fetch(BASE + '/api/healthz');
    assert(api.headers.get('x-content-type-options') === 'nosniff', 'the API answers with nosniff too');
  });

  await step('new-conversation-in-both-tabs', [A1, A2, B], async () => {
    await A1.page.click('#new-conv');
    convId = await poll(async () => /#\/c\/([0-9a-f-]{36})$/.exec(A1.page.url())?.[1], 'the new conversation to open');
    await A2.page.locator(`#conv-list li.conv[data-id="${convId}"]`).waitFor({ timeout: TIMEOUT });
    await A2.page.click(`#conv-list li.conv[data-id="${convId}"] .conv-title`);
    await A2.page.locator('#composer').waitFor();
    assert((await B.page.locator('#conv-list li.conv').count()) === 0, "the other user's list stays empty");
  });

  await step('reply-streams-in-both-tabs', [A1, A2, B], async () => {
    replyId = await send(A1, 'Tell me a long story', REPLY_MODEL);
    await A2.page.locator(msgSel(replyId)).waitFor({ timeout: TIMEOUT });
    await Promise.all([seesGrowing(A1, replyId, 3), seesGrowing(A2, replyId, 3)]);
    assert(await A2.page.locator('li.msg-user .msg-content', { hasText: 'Tell me a long story' }).count() === 1,
      "tab 2 shows the user's message");
    assert(await A1.page.locator(msgSel(replyId) + ' button.stop').isVisible(), 'a stop button while streaming');
    assert((await B.page.locator('li.msg').count()) === 0 && (await B.page.locator('#conv-list li.conv').count()) === 0,
      "the other user's tab shows nothing of it");
  });

  await step('reload-mid-stream-resumes', [A1, A2], async () => {
    const before = (await text(A2, replyId)).length;
    assert((await status(A2, replyId)) === 'streaming', 'still streaming before the reload');
    await A1.page.reload();
    await A1.page.locator(msgSel(replyId)).waitFor({ timeout: TIMEOUT });
    const first = (await text(A1, replyId)).length;
    assert(first >= before, `the text so far shows at once after the reload (${first} >= ${before} characters)`);
    await A1.shot('reloaded');
    await poll(async () => (await status(A1, replyId)) === 'completed' && (await status(A2, replyId)) === 'completed',
      'the reply to complete in both tabs', 30000);
    const [t1, t2] = [await text(A1, replyId), await text(A2, replyId)];
    assert(t1 === t2, 'both tabs hold the same text');
    assert(t1 === 'tok '.repeat(REPLY_TOKENS), `the whole reply, no gap or duplicate (${t1.length} characters)`);
    assert((await A1.page.locator(msgSel(replyId) + ' button.stop').count()) === 0, 'no stop button once completed');
  });

  await step('stop-in-tab-2-interrupts-both', [A1, A2], async () => {
    const id = await send(A1, 'Another one, longer', LONG_MODEL);
    await A2.page.locator(msgSel(id) + ' button.stop').waitFor({ timeout: TIMEOUT });
    await poll(async () => (await text(A2, id)).length > 0, 'some text before the stop');
    // Deleting a reply that is still generating is refused, and the tab says so.
    A1.allowed.push({ status: 409, path: '/api/messages/' });
    await A1.page.click(msgSel(id) + ' button.delete');
    await A1.page.locator('#notice', { hasText: 'still being generated' }).waitFor({ timeout: TIMEOUT });
    await A2.page.click(msgSel(id) + ' button.stop');
    for (const tab of [A1, A2]) {
      await tab.page.locator(msgSel(id) + ' .mark.interrupted').waitFor({ timeout: TIMEOUT });
    }
    const [t1, t2] = [await text(A1, id), await text(A2, id)];
    assert(t1 === t2, `both tabs show the same text (${t1.length} and ${t2.length} characters)`);
    assert(t1.length > 0 && t1.length < 'tok '.repeat(400).length, 'the text so far is kept, not the whole reply');
    assert((await A1.page.locator(msgSel(id) + ' button.stop').count()) === 0, 'no stop button after the stop');
    A1.allowed = [];
  });

  // A reasoning model (the fake's anthropic protocol with thinking): the thoughts
  // stream live in a block above the answer in both tabs, then fold away once
  // the answer comes; the model is one the picker offers from /api/models.
  await step('reasoning-streams-live-then-folds-in-both-tabs', [A1, A2], async () => {
    const offered = await A1.page.$$eval('#models option', (os) => os.map((o) => o.value));
    assert(offered.includes('fake-claude') && offered.includes('fake-gemini'), `the picker offers the server's models (${offered})`);
    const id = await send(A1, 'Think first', 'fake-claude:think=40:tokens=20:tps=25');
    for (const tab of [A1, A2]) {
      await poll(async () => {
        const block = tab.page.locator(msgSel(id) + ' details.reasoning');
        return (await block.count()) === 1 && (await block.getAttribute('open')) !== null &&
          (await block.locator('summary').textContent()) === 'Thinking…' &&
          (await block.locator('.reasoning-text').textContent()).startsWith('hmm hmm ');
      }, `${tab.label}: the thoughts growing, open, before the answer`);
    }
    await A2.shot('thinking');
    await poll(async () => (await status(A1, id)) === 'completed' && (await status(A2, id)) === 'completed',
      'the reply to complete in both tabs', 30000);
    for (const tab of [A1, A2]) {
      const block = tab.page.locator(msgSel(id) + ' details.reasoning');
      assert((await block.getAttribute('open')) === null, `${tab.label}: the thoughts fold away once the answer came`);
      assert((await block.locator('.reasoning-text').textContent()) === 'hmm '.repeat(40), `${tab.label}: every thought`);
      assert((await text(tab, id)) === 'tok '.repeat(20), `${tab.label}: the answer apart from the thoughts`);
    }
    await A1.page.reload();
    await A1.page.locator(msgSel(id) + ' details.reasoning').waitFor({ timeout: TIMEOUT });
    assert((await A1.page.locator(msgSel(id) + ' .reasoning-text').textContent()) === 'hmm '.repeat(40),
      'the thoughts come back after a reload (stored)');
  });

  // The conversation's settings set in tab 2 reach tab 1; a message sent there
  // without a model uses the conversation's, with its system prompt upstream
  // (the fake's echo model answers with what it received).
  await step('conversation-settings-sync-and-reach-the-upstream', [A1, A2], async () => {
    await A2.page.click('#conv-settings');
    await A2.page.fill('#system-prompt', 'Answer in French.');
    await A2.page.fill('#conv-model', 'fake:echo:tps=0');
    await A2.page.click('#settings-save');
    await poll(async () => (await A1.page.getAttribute('#model', 'placeholder')) === 'fake:echo:tps=0 (this chat)',
      "tab 1 learns the conversation's model");
    await A1.page.click('#conv-settings');
    assert((await A1.page.inputValue('#system-prompt')) === 'Answer in French.', "tab 1 shows the system prompt");
    await A1.shot('settings');
    await A1.page.click('#settings-cancel');
    const id = await send(A1, 'Bonjour', '');
    await poll(async () => (await status(A1, id)) === 'completed', 'the echo reply', 30000);
    const echoed = (await text(A2, id)).split('\n');
    assert(echoed[0] === 'system: Answer in French.' && echoed.includes('user: Bonjour'),
      `the upstream got the system prompt first and the message (${echoed.slice(0, 3)})`);
    assert((await A2.page.locator(msgSel(id) + ' .model').textContent()) === 'fake:echo:tps=0', "the conversation's model");
    await A2.page.click('#conv-settings');
    await A2.page.fill('#system-prompt', '');
    await A2.page.fill('#conv-model', '');
    await A2.page.click('#settings-save');
    await poll(async () => (await A1.page.getAttribute('#model', 'placeholder')) === 'fake (default)', 'cleared in tab 1');
  });

  // The UI in Simplified Chinese: chosen with the switch, kept across a reload,
  // and back to English; what the server sends (titles, text) is never touched.
  await step('chinese-ui-and-back', [A1], async () => {
    await A1.page.selectOption('#lang', 'zh');
    const words = async () => ({
      newChat: await A1.page.textContent('#new-conv'),
      send: await A1.page.textContent('#send'),
      input: await A1.page.getAttribute('#input', 'placeholder'),
      tasks: await A1.page.textContent('#nav-tasks'),
      edit: await A1.page.locator('li.msg-user button.edit').first().textContent(),
      stopped: await A1.page.locator('li.msg .mark.interrupted').first().textContent(),
      lang: await A1.page.getAttribute('html', 'lang'),
    });
    let w = await words();
    assert(w.newChat === '＋ 新对话' && w.send === '发送' && w.input === '输入消息…' && w.tasks === '任务' &&
      w.edit === '编辑' && w.stopped === '已中断' && w.lang === 'zh-CN', `the UI in Chinese (${JSON.stringify(w)})`);
    assert((await A1.page.locator('li.msg-user .msg-content', { hasText: 'Tell me a long story' }).count()) === 1,
      'messages stay as written');
    await A1.shot('chinese');
    await A1.page.reload();
    await A1.page.locator('#new-conv').waitFor({ timeout: TIMEOUT });
    await poll(async () => (await A1.page.textContent('#send')) === '发送', 'Chinese after a reload');
    await A1.page.selectOption('#lang', 'en');
    w = await words();
    assert(w.newChat === '+ New chat' && w.send === 'Send' && w.edit === 'Edit' && w.stopped === 'interrupted' &&
      w.lang === 'en', `back in English (${JSON.stringify(w)})`);
  });

  // Answers render as Markdown while they stream, through DOMPurify: emphasis and
  // a code block with a copy button show as such, HTML inside shows as text.
  await step('markdown-answer-with-code-and-html-as-text', [A1, A2], async () => {
    const md = '**bold** and `code`\n\n```\nprint(1)\n```\n\n<img src=y onerror=alert(2)>';
    const id = await send(A1, md, 'fake:echo:tps=0');
    for (const tab of [A1, A2]) {
      const box = tab.page.locator(msgSel(id) + ' .msg-content.markdown');
      await poll(async () => (await box.locator('pre.code-block code').count()) === 1, `${tab.label}: the code block`);
      assert((await box.locator('strong').first().textContent()) === 'bold', `${tab.label}: emphasis rendered`);
      assert((await box.locator('pre.code-block code').textContent()).includes('print(1)'), `${tab.label}: the code`);
      assert((await box.locator('pre.code-block button.copy').count()) === 1, `${tab.label}: a copy button`);
      assert((await tab.page.locator('.messages img').count()) === 0, `${tab.label}: no <img> element`);
      assert((await box.textContent()).includes('<img src=y onerror=alert(2)>'), `${tab.label}: the HTML shown as text`);
    }
    await A2.shot('markdown');
  });

  await step('edit-in-one-tab-shows-in-the-other', [A1, A2], async () => {
    const userMsg = A2.page.locator('li.msg-user').first();
    const id = await userMsg.getAttribute('data-id');
    await userMsg.locator('button.edit').click();
    await A2.page.fill(msgSel(id) + ' textarea.edit-input', 'Tell me a short story');
    await A2.page.click(msgSel(id) + ' button.save');
    await poll(async () => (await text(A1, id)) === 'Tell me a short story', 'the edit in tab 1');
  });

  await step('html-in-a-message-is-text', [A1, A2], async () => {
    const evil = '<img src=x onerror=alert(1)>';
    await send(A1, evil, 'fake:tokens=3');
    for (const tab of [A1, A2]) {
      await tab.page.locator('li.msg-user .msg-content', { hasText: evil }).waitFor({ timeout: TIMEOUT });
      assert((await tab.page.locator('.messages img').count()) === 0, `${tab.label}: no <img> element in the messages`);
    }
  });

  await step('spinner-then-failed-reply-with-its-error', [A1, A2], async () => {
    const slow = await send(A1, 'Take your time', 'fake:delay=1.5:tokens=3');
    await A2.page.locator(msgSel(slow) + ' .mark.spinner').waitFor({ timeout: TIMEOUT });
    await A2.shot('spinner');
    await poll(async () => (await status(A2, slow)) === 'completed', 'the slow reply to complete');
    assert((await A2.page.locator(msgSel(slow) + ' .mark').count()) === 0, 'no mark once completed');
    const bad = await send(A1, 'This one fails', 'fake:fail=500');
    for (const tab of [A1, A2]) {
      await tab.page.locator(msgSel(bad) + ' .mark.failed').waitFor({ timeout: TIMEOUT });
      const error = (await tab.page.locator(msgSel(bad) + ' .msg-error').textContent()).trim();
      assert(error.length > 0, `${tab.label} shows why the reply failed`);
      const bg = await tab.page.locator(msgSel(bad)).evaluate((li) => getComputedStyle(li).backgroundColor);
      assert(bg !== 'rgb(255, 255, 255)', `${tab.label}: the failed reply is styled as an error (${bg})`);
    }
  });

  await step('phone-viewport', [], async () => {
    const phone = new Tab('phone', await ctxA.newPage());
    try {
      await phone.page.setViewportSize({ width: 390, height: 844 });
      await openApp(phone, '#/');
      await phone.page.locator(`#conv-list li.conv[data-id="${convId}"]`).waitFor();
      assert(await phone.page.locator('#chat-pane').isHidden(), 'the list alone on a phone');
      await phone.shot('list');
      await phone.page.click(`#conv-list li.conv[data-id="${convId}"] .conv-title`);
      await phone.page.locator('#composer').waitFor();
      assert(await phone.page.locator('#sidebar').isHidden(), 'the chat alone on a phone');
      for (const sel of ['#input', '#send', '#back', msgSel(replyId)]) {
        const box = await phone.page.locator(sel).boundingBox();
        assert(box && box.x >= 0 && box.x + box.width <= 391, `${sel} fits the phone's width`);
      }
      const send = await phone.page.locator('#send').boundingBox();
      assert(send.y + send.height <= 844, 'the send button is on screen');
      const scroll = await phone.page.evaluate(() => document.documentElement.scrollWidth);
      assert(scroll <= 390, `no horizontal scrolling (${scroll}px wide)`);
      await phone.shot('chat');
      await phone.page.click('#back');
      await phone.page.locator('#sidebar').waitFor();
      await phone.page.goto(BASE + '/#/tasks');
      await phone.page.locator('#task-form').waitFor();
      await phone.shot('tasks');
    } finally {
      await phone.page.close();
    }
  });

  await step('rename-and-delete-follow-in-tab-1', [A1, A2], async () => {
    const title = 'Renamed <b>bold</b> ' + suffix;
    await A2.page.click(`#conv-list li.conv[data-id="${convId}"] button.rename`);
    await A2.page.fill('#conv-list .rename-input', title);
    await A2.page.press('#conv-list .rename-input', 'Enter');
    await poll(async () => (await convTitles(A1)).includes(title), 'the new title in tab 1');
    assert((await A1.page.textContent('#chat-title')) === title, "tab 1's open chat shows the new title, as text");
    await A1.shot('renamed');
    A2.acceptConfirm = true;
    await A2.page.click(`#conv-list li.conv[data-id="${convId}"] button.delete`);
    await poll(async () => (await A1.page.locator(`#conv-list li.conv[data-id="${convId}"]`).count()) === 0,
      "the conversation gone from tab 1's list");
    await poll(async () => await A1.page.locator('#chat-placeholder').isVisible(), 'tab 1 to leave the deleted chat');
    assert((await A1.page.locator('li.msg').count()) === 0, 'no messages of a deleted conversation');
    await A1.page.locator('#notice', { hasText: 'deleted' }).waitFor({ timeout: TIMEOUT });
  });

  let taskId = null;
  await step('task-progresses-in-tab-2', [A1, A2], async () => {
    await A1.page.click('#nav-tasks');
    await A2.page.click('#nav-tasks');
    await A1.page.selectOption('#task-kind', 'image');
    await A1.page.fill('#task-prompt', 'fake:steps=4:step=0.4 a red fox');
    const before = await taskIds(A1);
    await A1.page.click('#task-create');
    taskId = await poll(async () => (await taskIds(A1)).find((t) => !before.includes(t)), 'the new card in tab 1');
    const seen = new Set();
    let shot = false;
    await poll(async () => {
      const c = A2.page.locator(taskSel(taskId));
      const [s, p] = [await c.getAttribute('data-status', { timeout: 2000 }),
        Number(await c.locator('.progress').getAttribute('aria-valuenow', { timeout: 2000 }))];
      if (s === 'processing' && p > 0 && p < 100) seen.add(p);
      if (!shot && seen.size > 0) { shot = true; await A2.shot('progress'); }
      return s === 'succeeded';
    }, "the task to succeed in tab 2");
    assert(seen.size >= 2, `tab 2 saw the progress move (${[...seen].join(', ')}%)`);
    assert((await A2.page.locator(taskSel(taskId) + ' .pct').textContent()) === '100%', '100% at the end');
    for (const tab of [A1, A2]) {
      await poll(() => tab.page.locator(taskSel(taskId) + ' img').evaluate((img) => img.complete && img.naturalWidth > 0),
        `${tab.label}: the result image loaded`);
    }
    assert((await B.page.locator('#task-grid li.task').count()) === 0, "the other user's grid stays empty");
  });

  await step('blur-delete-restore-follow-in-tab-1', [A1, A2], async () => {
    await A2.page.click(taskSel(taskId) + ' button.blur-toggle');
    await poll(async () => (await A1.page.getAttribute(taskSel(taskId), 'data-blurred')) === 'true', 'blurred in tab 1');
    const filter = await A1.page.locator(taskSel(taskId) + ' img').evaluate((img) => getComputedStyle(img).filter);
    assert(filter.includes('blur'), `tab 1 blurs the image (filter: ${filter})`);
    await A1.shot('blurred');
    await A2.page.click(taskSel(taskId) + ' button.delete');
    await poll(async () => (await A1.page.locator(taskSel(taskId)).count()) === 0, 'the task gone from tab 1');
    await A2.page.click('#show-trash');
    await A2.page.locator(taskSel(taskId) + ' button.restore').waitFor({ timeout: TIMEOUT });
    await A2.shot('trash');
    await A2.page.click(taskSel(taskId) + ' button.restore');
    await A1.page.locator(taskSel(taskId)).waitFor({ timeout: TIMEOUT });
    assert((await A1.page.getAttribute(taskSel(taskId), 'data-status')) === 'succeeded', 'restored as it was');
    assert((await A1.page.getAttribute(taskSel(taskId), 'data-blurred')) === 'true', 'still blurred');
    await poll(async () => (await A2.page.locator(taskSel(taskId)).count()) === 0, "tab 2's trash empty again");
    await A2.page.click('#show-active');
    await A2.page.click(taskSel(taskId) + ' button.blur-toggle');
    await poll(async () => (await A1.page.getAttribute(taskSel(taskId), 'data-blurred')) === 'false', 'unblurred in tab 1');
    const plain = await A1.page.locator(taskSel(taskId) + ' img').evaluate((img) => getComputedStyle(img).filter);
    assert(!plain.includes('blur'), `tab 1 shows the image sharp again (filter: ${plain})`);
  });

  // A video the upstream serves only with its key plays from the site itself:
  // the card's <video> points at /api/tasks/{id}/content, which answers with the
  // user's cookie, and the upstream's address appears nowhere in the page.
  await step('video-result-comes-through-the-api', [A1, A2], async () => {
    await A1.page.selectOption('#task-kind', 'video');
    await A1.page.fill('#task-prompt', 'fake:steps=1 a wave');
    const before = await taskIds(A1);
    await A1.page.click('#task-create');
    const id = await poll(async () => (await taskIds(A1)).find((t) => !before.includes(t)), 'the new card in tab 1');
    const src = `/api/tasks/${id}/content`;
    for (const tab of [A1, A2]) {
      await poll(async () => (await tab.page.locator(taskSel(id) + ' video').getAttribute('src', { timeout: 2000 })) === src,
        `${tab.label}: the card's video plays ${src}`);
    }
    const got = await A2.page.evaluate(async (u) => {
      const r = await fetch(u, { headers: { Range: 'bytes=0-9' } });
      return { status: r.status, text: await r.text() };
    }, src);
    assert(got.status === 206 && got.text === 'fake video', `the video comes through the API (${got.status} ${got.text})`);
    const html = await A2.page.locator(taskSel(id)).evaluate((li) => li.outerHTML);
    assert(!html.includes(FAKE_URL.replace(/^https?:\/\//, '')), "the video upstream's address is not in the card");
    await A2.shot('video');
  });

  // Both responders down: the tab says it is reconnecting. Meanwhile a rename
  // happens whose event is pruned before the tab can replay it, so the tab gets
  // `reset` when the responders are back, and only a reload over REST shows it.
  await step('reconnecting-then-reset-reloads-over-rest', [A1], async () => {
    if (!process.env.MJS_STATE_DIR) throw new Error('needs MJS_STATE_DIR (the stack\'s processes are restarted)');
    await A1.page.click('#nav-chat');
    await A2.page.click('#nav-chat');
    await A2.page.click('#new-conv');
    const id = await poll(async () => /#\/c\/([0-9a-f-]{36})$/.exec(A2.page.url())?.[1], 'a new conversation');
    await A1.page.locator(`#conv-list li.conv[data-id="${id}"]`).waitFor({ timeout: TIMEOUT });
    A1.allowed.push({ text: /50[234]|net::ERR_/ });
    A2.allowed.push({ text: /50[234]|net::ERR_/ });
    try {
      stackShell('mjs_stop api-1 api-2');
      await poll(async () => (await A1.page.getAttribute('#conn', 'data-state')) === 'reconnecting', 'the reconnecting indicator');
      await A1.shot('reconnecting');
      stackShell(`mjs_psql -d mjs -v name="$E2E_USER" -v id="$E2E_CONV" <<'SQL'
BEGIN;
SELECT mjs.lock_user(id) FROM mjs.users WHERE username = :'name';
UPDATE mjs.conversations SET title = 'Renamed while away', updated_at = now() WHERE id = :'id';
SELECT mjs.emit(c.user_id, 'conversation.updated', mjs.conversation_json(c)) FROM mjs.conversations c WHERE id = :'id';
DELETE FROM mjs.events WHERE user_id = (SELECT id FROM mjs.users WHERE username = :'name');
COMMIT;
SQL`, { E2E_USER: 'alice_' + suffix, E2E_CONV: id });
    } finally {
      stackShell('mjs_pid api-1 >/dev/null || mjs_start_api 1; mjs_pid api-2 >/dev/null || mjs_start_api 2');
    }
    await poll(async () => (await convTitles(A1)).includes('Renamed while away'), "the reload to show the pruned rename in tab 1", 20000);
    await poll(async () => (await A1.page.getAttribute('#conn', 'data-state')) === 'live', 'the live indicator again');
    A1.allowed = [];
    A2.allowed = [];
  });

  // A failover to a standby that had not received the newest commits: the
  // rename the tabs saw is gone from the database, and the user's seq is back
  // before it. The tab's last id is past the new head, so the stream says
  // `reset` for "history", and the tab must start over: merging the reload by
  // seq would keep the lost title, held from a seq newer than the reload's.
  await step('a-failover-that-lost-events-starts-the-tab-over', [A1], async () => {
    if (!process.env.MJS_STATE_DIR) throw new Error('needs MJS_STATE_DIR (the stack\'s processes are restarted)');
    const call = await apiClient(ctxA);
    await A1.page.click('#nav-chat');
    const kept = `Kept ${suffix}`, lost = `Lost in a failover ${suffix}`;
    const c = await call('POST', '/conversations', { title: kept });
    await poll(async () => (await convTitles(A1)).includes(kept), 'the new conversation in tab 1');
    const seq = (await call('GET', '/me')).event_seq;
    await call('PATCH', `/conversations/${c.id}`, { title: lost });
    await poll(async () => (await convTitles(A1)).includes(lost), 'the rename in tab 1');
    A1.allowed.push({ text: /50[234]|net::ERR_/ });
    A2.allowed.push({ text: /50[234]|net::ERR_/ });
    try {
      stackShell('mjs_stop api-1 api-2');
      await poll(async () => (await A1.page.getAttribute('#conn', 'data-state')) === 'reconnecting', 'the reconnecting indicator');
      stackShell(`mjs_psql -d mjs -v name="$E2E_USER" -v id="$E2E_CONV" -v seq="$E2E_SEQ" -v kept="$E2E_KEPT" <<'SQL'
BEGIN;
SELECT mjs.lock_user(id) FROM mjs.users WHERE username = :'name';
UPDATE mjs.conversations SET title = :'kept' WHERE id = :'id';
DELETE FROM mjs.events WHERE user_id = (SELECT id FROM mjs.users WHERE username = :'name') AND seq > :'seq'::bigint;
UPDATE mjs.users SET event_seq = :'seq'::bigint WHERE username = :'name';
COMMIT;
SQL`, { E2E_USER: 'alice_' + suffix, E2E_CONV: c.id, E2E_SEQ: String(seq), E2E_KEPT: kept });
    } finally {
      stackShell('mjs_pid api-1 >/dev/null || mjs_start_api 1; mjs_pid api-2 >/dev/null || mjs_start_api 2');
    }
    await poll(async () => {
      const titles = await convTitles(A1);
      return titles.includes(kept) && !titles.includes(lost);
    }, 'tab 1 to show the database\'s title, not the lost rename', 20000);
    await poll(async () => (await A1.page.getAttribute('#conn', 'data-state')) === 'live', 'the live indicator again');
    // and it goes on live in the new history
    await call('PATCH', `/conversations/${c.id}`, { title: `${kept} again` });
    await poll(async () => (await convTitles(A1)).includes(`${kept} again`), 'a rename after the failover in tab 1');
    await A1.shot('after-failover');
    A1.allowed = [];
    A2.allowed = [];
  });

  // The race of issue 11: a tab opens a conversation (or starts up) while
  // another device sends messages into it, renames and deletes. Whatever
  // arrives while the tab's REST load is in flight, the tab must end showing
  // exactly what the API lists, in the same order: a tab that replaced its
  // state with the load's answer lost the messages whose events came during it.
  await step('opening-while-another-device-writes-loses-nothing', [A1, A2], async () => {
    const call = await apiClient(ctxA);
    await A1.page.click('#nav-chat');
    await A2.page.click('#nav-chat');
    const convs = [];
    for (let i = 0; i < 3; i++) {
      const c = await call('POST', '/conversations', { title: `race ${i} ${suffix}` });
      await call('POST', `/conversations/${c.id}/messages`, { content: `seed ${i}`, model: 'fake:tps=0:tokens=2' });
      convs.push(c.id);
    }
    const ROUNDS = 24;
    let extra = null;
    for (let r = 0; r < ROUNDS; r++) {
      const target = convs[r % convs.length];
      const offset = (r * 7) % 23;          // ms between the tab's open and the first write
      const writes = async () => {
        await sleep(offset);
        const sends = [0, 1, 2].map((k) => call('POST', `/conversations/${target}/messages`,
          { content: `round ${r} message ${k}`, model: 'fake:tps=200:tokens=4' }));
        const sent = await Promise.all(sends);
        if (r % 2) await call('PATCH', `/conversations/${target}`, { title: `race ${target.slice(0, 4)} r${r} ${suffix}` });
        if (r % 3 === 0) await call('DELETE', `/messages/${sent[0].user_message.id}`);
        if (extra) { await call('DELETE', `/conversations/${extra}`); extra = null; }
        else extra = (await call('POST', '/conversations', { title: `extra r${r} ${suffix}` })).id;
        if (r % 4 === 1) await call('POST', '/tasks', { kind: 'image', prompt: `fake:steps=1 race ${r}` });
        if (r % 4 === 3) {
          const newest = (await call('GET', '/tasks?limit=1')).items[0];
          if (newest) await call('DELETE', `/tasks/${newest.id}`);
        }
      };
      // Even rounds: A1 opens the conversation. Odd rounds: A2, with it open,
      // starts up again (a reload: every list loads while the writes land).
      const tab = r % 2 === 0 ? A1 : A2;
      const opening = r % 2 === 0
        ? tab.page.evaluate((id) => { location.hash = '#/c/' + id; }, target)
        : (async () => {
          await tab.page.evaluate((id) => { location.hash = '#/c/' + id; }, target);
          await poll(async () => (await shown(tab)).open === target, 'A2 to open the target');
          await tab.page.reload();
        })();
      await Promise.all([opening, writes()]);
      await poll(async () => (await listAllApi(call, `/conversations/${target}/messages`))
        .every((m) => ['completed', 'stopped', 'failed'].includes(m.status)), `round ${r}: every reply final`, 20000);
      await poll(async () => (await listAllApi(call, '/tasks?limit=50'))
        .every((t) => t.status === 'succeeded' || t.status === 'failed'), `round ${r}: every task final`, 20000);
      for (const t of [A1, A2]) {
        let last = null;
        try {
          await poll(async () => {
            const got = await shown(t);
            last = { got, want: await listed(call, got.open) };
            return JSON.stringify(last.got) === JSON.stringify(last.want);
          }, `round ${r} (offset ${offset} ms): ${t.label} to show what the API lists`, 10000);
        } catch (e) {
          const diff = ['convs', 'msgs', 'tasks'].filter((k) => JSON.stringify(last.got[k]) !== JSON.stringify(last.want[k]))
            .map((k) => `${k}: shows ${JSON.stringify(last.got[k])}\n    API lists ${JSON.stringify(last.want[k])}`);
          throw new Error(`${e.message}\n  ${diff.join('\n  ')}`);
        }
      }
    }
  });
}

main().then((ok) => process.exit(ok ? 0 : 1), (e) => {
  console.error(e);
  process.exit(1);
});

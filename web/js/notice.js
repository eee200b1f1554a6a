// notice.js: the one-line banner for what the user must know (a 409, a failed
// request, a conversation deleted elsewhere). It hides itself after a while.

import { $ } from './dom.js';

let timer = null;

export function showNotice(text) {
  $('notice-text').textContent = text;
  $('notice').hidden = false;
  if (timer) clearTimeout(timer);
  timer = setTimeout(hideNotice, 10000);
}

export function hideNotice() {
  $('notice').hidden = true;
  if (timer) clearTimeout(timer);
  timer = null;
}

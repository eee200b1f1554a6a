// markdown.js: an assistant's answer as Markdown, while it streams. The
// libraries are Debian's packages of marked and DOMPurify (node-marked,
// node-dompurify), which nginx serves under /vendor/ (nginx/mjs.conf); they load
// on first use, and until they have (or if they cannot), text stays plain.
//
// Nothing unsanitised reaches the page: raw HTML in the Markdown is turned into
// text before parsing (a reply holding <img onerror=...> shows those characters),
// marked's output goes through DOMPurify, and the result is a DOM fragment,
// never an innerHTML assignment. Code blocks get a copy button.

import { el } from './dom.js';
import { t } from './i18n.js';

let lib = null;       // { marked, purify } once loaded
let loading = null;

export function loadMarkdown() {
  if (!loading) {
    loading = Promise.all([import('/vendor/marked.esm.js'), import('/vendor/purify.es.js')])
      .then(([m, p]) => {
        const marked = m.marked;
        marked.use({
          mangle: false,
          headerIds: false,
          // HTML in the Markdown is shown as text, never as markup
          renderer: { html: (html) => escapeHtml(html) },
        });
        lib = { marked, purify: p.default };
        return true;
      })
      .catch(() => false);
  }
  return loading;
}

export function markdownReady() {
  return lib !== null;
}

function escapeHtml(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

// The nodes of text rendered as Markdown (call when markdownReady()).
export function renderMarkdown(text) {
  const html = lib.marked.parse(text);
  const frag = lib.purify.sanitize(html, { RETURN_DOM_FRAGMENT: true, FORBID_TAGS: ['style', 'form', 'input'] });
  for (const pre of frag.querySelectorAll('pre')) {
    const code = pre.querySelector('code') || pre;
    pre.classList.add('code-block');
    pre.prepend(el('button', {
      type: 'button', class: 'copy', title: t('Copy'),
      onclick: (e) => {
        navigator.clipboard?.writeText(code.textContent).then(() => { e.target.textContent = t('Copied'); }, () => {});
      },
    }, t('Copy')));
  }
  for (const a of frag.querySelectorAll('a[href]')) {
    a.setAttribute('target', '_blank');
    a.setAttribute('rel', 'noopener noreferrer');
  }
  return frag;
}

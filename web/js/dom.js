// dom.js: building elements without HTML strings. Text always goes in through
// textContent, so data from the server (a message holding <script>, say) is
// shown as text and never parsed.

// el('button', {class: 'x', onclick: fn, dataset: {id}}, 'text', child…)
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

export const $ = (id) => document.getElementById(id);

// The length of a string in Unicode code points: what message.delta offsets count.
export function cpLength(s) {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

// The code points of s from index `from` on.
export function cpSlice(s, from) {
  return Array.from(s).slice(from).join('');
}

export function shortTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleString([], { hour: '2-digit', minute: '2-digit', month: 'short', day: 'numeric' });
}

// api.js: the REST API over fetch. Every call resolves to the parsed JSON body
// (null for 204) or throws an ApiError carrying the server's status, error code
// and message, so callers can tell a 409 from a 404 and show the server's words.
// apiSeq also gives the event seq the answer reflects, for mirror.js.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Set by app.js: called when any request answers 401 (the session is gone).
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

// The answer of a request and the user's event seq it reflects (the
// Mjs-Event-Seq header, mjs-events(7); 0 when absent): {data, seq}.
export async function apiSeq(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch('/api' + path, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'the server cannot be reached; check the connection');
  }
  const seq = Number(res.headers.get('Mjs-Event-Seq')) || 0;
  if (res.status === 204) return { data: null, seq };
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    if (res.status === 401 && !path.startsWith('/auth/')) onUnauthorized();
    throw new ApiError(res.status, err.code || 'http_' + res.status,
      err.message || 'request failed (HTTP ' + res.status + ')');
  }
  return { data, seq };
}

export async function api(method, path, body) {
  return (await apiSeq(method, path, body)).data;
}

// Every page of a list endpoint, GET path following `next` cursors, as
// [{items, seq}] (each page is its own snapshot with its own seq). Nothing is
// returned unless every page arrived, so a failure changes nothing.
export async function listPages(path) {
  const pages = [];
  for (let cursor = null; ;) {
    const sep = path.includes('?') ? '&' : '?';
    const { data, seq } = await apiSeq('GET', path + (cursor ? sep + 'cursor=' + encodeURIComponent(cursor) : ''));
    pages.push({ items: data.items, seq });
    if (!data.next) return pages;
    cursor = data.next;
  }
}

// A request whose answer goes into mirrors (mirror.js; one, or an array when
// the object moves between them): apply(data, seq) runs when the answer
// arrives, unless a mirror was cleared meanwhile, and the request counts as in
// flight in each until then, so that a deletion seen meanwhile keeps its
// tombstone. Resolves to {data, seq}; throws as api() does.
export async function apiInto(mirrors, method, path, body, apply) {
  const all = Array.isArray(mirrors) ? mirrors : [mirrors];
  const tickets = all.map((m) => m.begin());
  try {
    const r = await apiSeq(method, path, body);
    if (all.every((m, i) => m.current(tickets[i]))) apply(r.data, r.seq);
    return r;
  } finally {
    all.forEach((m, i) => m.end(tickets[i]));
  }
}

// api.js: the REST API over fetch. Every call resolves to the parsed JSON body
// (null for 204) or throws an ApiError carrying the server's status, error code
// and message, so callers can tell a 409 from a 404 and show the server's words.

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

export async function api(method, path, body) {
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
  if (res.status === 204) return null;
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
  return data;
}

// Every page of a list endpoint: GET path, following `next` cursors.
export async function listAll(path) {
  const items = [];
  let cursor = null;
  for (;;) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api('GET', path + (cursor ? sep + 'cursor=' + encodeURIComponent(cursor) : ''));
    items.push(...page.items);
    if (!page.next) return items;
    cursor = page.next;
  }
}

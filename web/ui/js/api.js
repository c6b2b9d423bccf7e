// Talks to the public /api/v1 routes with the signed-in API key (Authorization: Bearer).
// The key lives in sessionStorage only: it is gone when the tab closes, never in a URL.

const KEY = 'flowmesh.apiKey';
const BASE = '/api/v1';

export function apiKey() {
  return sessionStorage.getItem(KEY) || '';
}

export function setApiKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function clearApiKey() {
  sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

// Called with the error when the server refuses the key (401); main.js sends the user to
// the sign-in view.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

function authHeaders(extra = {}) {
  const headers = { ...extra };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

async function failure(response) {
  let detail = response.statusText;
  try {
    const body = await response.json();
    if (body && body.detail) detail = typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail);
  } catch (_) {
    // Not JSON: keep the status text.
  }
  const error = new ApiError(response.status, detail);
  if (response.status === 401) onUnauthorized(error);
  return error;
}

// GET/POST a route under /api/v1; answers the parsed body (JSON, NDJSON as an array, else
// text). `as: 'response'` hands back the Response itself.
export async function api(path, { method = 'GET', body, contentType, signal, as } = {}) {
  const headers = authHeaders({ Accept: 'application/json' });
  if (body !== undefined && contentType) headers['Content-Type'] = contentType;
  const response = await fetch(BASE + path, { method, headers, body, signal, cache: 'no-store' });
  if (!response.ok) throw await failure(response);
  if (as === 'response') return response;
  const type = response.headers.get('Content-Type') || '';
  if (type.includes('ndjson')) {
    const text = await response.text();
    return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  }
  if (type.includes('json')) return response.json();
  return response.text();
}

// Builds "?a=1&b=2" from an object, skipping empty values; arrays repeat the key.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    for (const item of Array.isArray(v) ? v : [v]) q.append(k, String(item));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

// Follows a Server-Sent Events route with fetch (EventSource cannot send the Authorization
// header). Calls onEvent({id, event, data}) per frame; resumes after a dropped connection
// from the last id (Last-Event-ID) until the server sends `eos`, the signal aborts, or the
// route refuses (then onError). Resolves when the stream is over.
export async function followSse(path, { cursor = '', signal, onEvent, onError, onOpen }) {
  let last = cursor;
  let delay = 500;
  while (!signal?.aborted) {
    let ended = false;
    try {
      const headers = authHeaders({ Accept: 'text/event-stream' });
      if (last) headers['Last-Event-ID'] = last;
      const response = await fetch(BASE + path, { headers, signal, cache: 'no-store' });
      if (!response.ok) {
        const error = await failure(response);
        if (onError) onError(error);
        return;
      }
      if (onOpen) onOpen();
      delay = 500;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let split;
        while ((split = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const frame = buffer.slice(0, split);
          buffer = buffer.slice(split).replace(/^\r?\n\r?\n/, '');
          const parsed = parseFrame(frame);
          if (!parsed) continue;
          if (parsed.id) last = parsed.id;
          if (parsed.event === 'eos') ended = true;
          onEvent(parsed);
        }
      }
    } catch (error) {
      if (signal?.aborted) return;
    }
    if (ended) return;
    // The connection dropped (server restart, proxy timeout): resume from the last id.
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

function parseFrame(frame) {
  let id = '';
  let event = 'message';
  const data = [];
  for (const line of frame.split(/\r?\n/)) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id') id = value;
    else if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length && !id) return null;
  return { id, event, data: data.join('\n') };
}

// Downloads a route's body as a file (the key goes in the header, not the URL).
export async function download(path, filename) {
  const response = await api(path, { as: 'response' });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

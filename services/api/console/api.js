// The console's calls to the TM, and the small formatting helpers every page shares.
import { h } from './vendor/preact.mjs';
import htm from './vendor/htm.mjs';

export const html = htm.bind(h);

const TOKEN_KEY = 'dtm-console-token';

/** The bearer token the operator typed (kept for this tab only). */
export const getToken = () => sessionStorage.getItem(TOKEN_KEY) ?? '';
export const setToken = (token) =>
  token ? sessionStorage.setItem(TOKEN_KEY, token) : sessionStorage.removeItem(TOKEN_KEY);

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Fetches JSON from the TM, with the token when one is set; a non-2xx answer throws its message. */
export async function api(path, { method = 'GET', body, text = false } = {}) {
  const headers = { accept: text ? 'text/plain' : 'application/json' };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const raw = await res.text();
  if (text && res.ok) return raw;
  let data = null;
  try {
    data = raw ? JSON.parse(raw) : null;
  } catch {
    data = { message: raw };
  }
  if (!res.ok) {
    const why = res.status === 401 || res.status === 403 ? ' (set an API token with the admin scope above)' : '';
    throw new ApiError(res.status, `${res.status}: ${data?.message ?? res.statusText}${why}`);
  }
  return data;
}

/** A query string of the non-empty entries. */
export const qs = (params) =>
  new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString();

export const dtm = (path, params) => `/api/dtmsvr/${path}${params ? `?${qs(params)}` : ''}`;

export const txHref = (gid) => `/tx/${encodeURIComponent(gid)}`;

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** `2026-05-01 12:00:00Z` (UTC, as the logs), with milliseconds when asked. */
export const fmtTime = (value, ms = false) => {
  if (value === undefined || value === null || value === '') return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return `${base}${ms ? `.${pad(d.getUTCMilliseconds(), 3)}` : ''}Z`;
};

/** `3 s`, `4 min 2 s`, `2 h 5 min`. */
export const fmtDuration = (seconds) => {
  if (!Number.isFinite(seconds)) return '—';
  const s = Math.round(Math.abs(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
};

/** When a retry is due, relative to now. */
export const fmtDue = (iso, now = Date.now()) => {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const d = (t - now) / 1000;
  return d >= 0 ? `in ${fmtDuration(d)}` : `${fmtDuration(d)} ago`;
};

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes as text when they are UTF-8 without control characters, else null. */
export const asText = (bytes) => {
  let s;
  try {
    s = UTF8.decode(bytes);
  } catch {
    return null;
  }
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // Control characters other than tab, newline, carriage return: binary, shown as base64.
    if ((c < 32 && c !== 9 && c !== 10 && c !== 13) || c === 127) return null;
  }
  return s;
};

/** JSON objects and arrays indented, anything else as it is. */
export const pretty = (text) => {
  try {
    const v = JSON.parse(text);
    if (v !== null && typeof v === 'object') return JSON.stringify(v, null, 2);
  } catch {
    // not JSON: plain text
  }
  return text;
};

/** A stored payload (base64) decoded for people: `{ text }` or `{ base64 }`. */
export const decodePayload = (b64) => {
  if (!b64) return { text: '' };
  let bytes;
  try {
    bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  } catch {
    return { text: b64 };
  }
  const text = asText(bytes);
  return text === null ? { base64: b64 } : { text };
};

export const STATUSES = ['prepared', 'submitted', 'aborting', 'succeed', 'failed'];
export const TRANS_TYPES = ['saga', 'tcc', 'xa', 'msg', 'workflow'];
export const UNDO_OPS = new Set(['compensate', 'cancel', 'rollback']);

export const StatusBadge = ({ status }) => html`<span class=${`badge s-${status}`}>${status}</span>`;

/** An error or a note for screen readers and eyes alike. */
export const Notice = ({ error, message }) =>
  error
    ? html`<p class="notice error" role="alert">${String(error.message ?? error)}</p>`
    : message
      ? html`<p class="notice" role="status">${message}</p>`
      : null;

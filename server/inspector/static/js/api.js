// The JSON API, with the key the user typed (kept in this tab's sessionStorage only).
// The page reads exactly what any API client with the same key could read.

const KEY = "assistd-inspector-key";

export const auth = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  set(key) {
    sessionStorage.setItem(KEY, key);
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra = {}) {
  const out = { "OpenAI-Beta": "assistants=v2", ...extra };
  if (auth.key) out.Authorization = `Bearer ${auth.key}`;
  return out;
}

export async function api(path, { method = "GET", query = {}, body } = {}) {
  const url = new URL(`/v1${path}`, location.origin);
  for (const [name, value] of Object.entries(query)) {
    for (const item of [value].flat()) {
      if (item !== undefined && item !== null && item !== "") url.searchParams.append(name, item);
    }
  }
  const response = await fetch(url, {
    method,
    headers: headers(body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.message || response.statusText, error.code);
  }
  return data;
}

/** Every item of a list endpoint, page after page (at most `max`). */
export async function listAll(path, query = {}, max = 1000) {
  const items = [];
  let after;
  for (;;) {
    const page = await api(path, { query: { limit: 100, ...query, after } });
    items.push(...page.data);
    if (!page.has_more || !page.last_id || items.length >= max) return items;
    after = page.last_id;
  }
}

const files = new Map();
const blobs = new Map();

/** A file's object (name, size, purpose), asked for once per page load. */
export function fileInfo(fileId) {
  if (!files.has(fileId)) files.set(fileId, api(`/files/${encodeURIComponent(fileId)}`).catch(() => null));
  return files.get(fileId);
}

/** A blob: URL of a file's bytes, downloaded with the key (an <img> cannot send it). */
export function fileUrl(fileId) {
  if (!blobs.has(fileId)) {
    const url = new URL(`/v1/files/${encodeURIComponent(fileId)}/content`, location.origin);
    blobs.set(
      fileId,
      fetch(url, { headers: headers() }).then(async (response) => {
        if (!response.ok) throw new ApiError(response.status, response.statusText);
        return URL.createObjectURL(await response.blob());
      }),
    );
  }
  return blobs.get(fileId);
}

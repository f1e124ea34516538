// The server's API as the page uses it: requests with the key, OpenAI's error object, job events.
//
// Job events: the page reads /v1/jobs/{id}/events with fetch() and parses the server-sent events
// itself instead of using EventSource, because EventSource cannot send an Authorization header
// and a key in the URL would end up in logs and history. One path serves servers with and
// without keys. If the stream breaks before the job ends (a proxy, a flaky network), the page
// polls GET /v1/jobs/{id} until the job is final, so a job is never left without an outcome.
// URLs are relative, so the page also works behind a proxy that serves it under a prefix.

const KEY_STORAGE = "abstractvision.playground.key";
const FINAL = new Set(["completed", "failed", "cancelled"]);
const POLL_MS = 1000;

/** Events: "unauthorized" (detail: the server's message) when a call is refused for its key. */
export const apiEvents = new EventTarget();

/** An error as the API described it (OpenAI's error object), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, message, { param = null, code = null, type = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.param = param;
    this.code = code;
    this.type = type;
  }
}

let sessionKey = ""; // where the key lives when the browser refuses localStorage

export const keyStore = {
  get() {
    try {
      return localStorage.getItem(KEY_STORAGE) || sessionKey;
    } catch {
      return sessionKey;
    }
  },
  set(key) {
    try {
      localStorage.setItem(KEY_STORAGE, key);
    } catch {
      sessionKey = key; // storage disabled: the key lasts until the page is closed
    }
  },
  clear() {
    sessionKey = "";
    try {
      localStorage.removeItem(KEY_STORAGE);
    } catch {
      // nothing stored
    }
  },
};

export function isFinal(status) {
  return FINAL.has(status);
}

/** fetch() with the key; a non-2xx answer becomes an ApiError carrying the server's message. */
export async function request(path, { method = "GET", body, signal, headers = {} } = {}) {
  const key = keyStore.get();
  const init = { method, signal, headers: { ...headers } };
  if (key) init.headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `cannot reach the server (${err.message})`);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

async function errorFrom(response) {
  let detail = {};
  try {
    detail = (await response.json()).error || {};
  } catch {
    // not JSON: a proxy's page, say
  }
  const message = detail.message || `${response.status} ${response.statusText || "error"}`;
  const error = new ApiError(response.status, message, detail);
  if (response.status === 401) apiEvents.dispatchEvent(new CustomEvent("unauthorized", { detail: message }));
  return error;
}

export async function getJson(path, options) {
  return (await request(path, options)).json();
}

export async function postJson(path, body, options = {}) {
  return (await request(path, { ...options, method: "POST", body })).json();
}

/** A stored result as a Blob (GET /v1/files/{id}, which needs the key like every /v1 route). */
export async function fetchFile(fileId, options) {
  return (await request(`v1/files/${encodeURIComponent(fileId)}`, options)).blob();
}

/**
 * Follow a job until it ends: onEvent(event) for each event (queued, running, started, step,
 * preview, ...; polled states arrive as {type: "poll", status, progress, queue_position}).
 * Resolves with the final event ({type: completed|failed|cancelled, result?, error?}).
 */
export async function followJob(jobId, onEvent, signal) {
  const path = `v1/jobs/${encodeURIComponent(jobId)}`;
  try {
    const response = await request(`${path}/events`, { signal, headers: { Accept: "text/event-stream" } });
    for await (const event of readEvents(response.body)) {
      onEvent(event);
      if (FINAL.has(event.type)) return event;
    }
  } catch (err) {
    // a 4xx (no such job, a refused key) will not get better by polling; the rest may
    if (err.name === "AbortError" || (err instanceof ApiError && err.status >= 400 && err.status < 500)) throw err;
  }
  for (;;) {
    const view = await getJson(path, { signal });
    if (FINAL.has(view.status)) {
      const event = { type: view.status, status: view.status, result: view.result, error: view.error };
      onEvent(event);
      return event;
    }
    onEvent({ type: "poll", status: view.status, progress: view.progress, queue_position: view.queue_position });
    await sleep(POLL_MS, signal);
  }
}

/** Server-sent events from a response body: each event's joined data lines, parsed as JSON. */
async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer = (buffer + value).replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data) yield JSON.parse(data); // comment-only blocks (keepalives) have no data
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new DOMException("aborted", "AbortError"));
      },
      { once: true },
    );
  });
}

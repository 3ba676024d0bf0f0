// The public API, as the browser speaks it. The access token lives in this module's memory
// only; the refresh token is an HttpOnly cookie that script never sees, renewed through
// /auth/web/refresh with the CSRF cookie's value as a header.

const API = "/api/v1";
let access = null; // {token, expires}: the access token and when to renew it (ms)
let renewing = null; // the renewal in flight, shared by every caller
let account = null; // the signed-in account (GET /users/me)
const watchers = new Set();

/** An answer that is not a success, in words a person understands. */
export class ApiError extends Error {
  constructor(status, problem = {}, retryAfter = null) {
    super(explain(status, problem, retryAfter));
    this.status = status;
    this.problem = problem;
  }
}

function explain(status, problem, retryAfter) {
  const detail = problem.detail ? `${problem.detail[0].toUpperCase()}${problem.detail.slice(1)}.` : "";
  const fields = Object.entries(problem.errors ?? {}).map(([name, why]) => `${name.replace("_", " ")} ${why}.`);
  switch (status) {
    case 0: return "Can't reach MemeDroid. Check your connection and try again.";
    case 400: return fields.join(" ") || detail || "Something in the form isn't right.";
    case 401: return "Please sign in first.";
    case 403: return detail || "You can't do that.";
    case 404: return "That isn't here: it may have been deleted.";
    case 409: return detail || "That was done already.";
    case 413: return "That file is too big to upload.";
    case 415: return `That kind of file can't be posted${problem.detected ? ` (it looks like a ${problem.detected})` : ""}: post a JPEG, PNG, GIF, WebP, HEIC or AVIF image, or an MP4, MOV, WebM or AVI video.`;
    case 422: return detail || "That file can't be used.";
    case 429: return `Slow down a little: try again${retryAfter ? ` in ${retryAfter} seconds` : " in a moment"}.`;
    case 503: return "MemeDroid is busy right now. Try again in a moment.";
    default: return status >= 500 ? "Something went wrong on our side. Try again." : detail || `The server said ${status}.`;
  }
}

function csrfToken() {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrf_refresh_token="));
  return cookie ? decodeURIComponent(cookie.split("=")[1]) : null;
}

async function send(path, init) {
  let response;
  try {
    // "no-cache": always ask the server, with the ETag of any copy kept (a 304 costs no
    // bytes), so the client never shows an answer a second old after a change it knows of.
    response = await fetch(API + path, { credentials: "same-origin", cache: "no-cache", ...init });
  } catch {
    throw new ApiError(0);
  }
  if (response.ok) return response.status === 204 ? null : response.json();
  const problem = await response.json().catch(() => ({}));
  throw new ApiError(response.status, problem, response.headers.get("Retry-After"));
}

function keep(tokens) {
  access = { token: tokens.access_token, expires: Date.now() + (tokens.expires_in - 30) * 1000 };
}

/** A fresh access token from the refresh cookie; false when there is no session (any more). */
function renew() {
  const csrf = csrfToken();
  if (!csrf) return Promise.resolve(false);
  renewing ??= send("/auth/web/refresh", { method: "POST", headers: { "X-CSRF-TOKEN": csrf } })
    .then((tokens) => (keep(tokens), true))
    .catch((error) => {
      if (error.status === 401 || error.status === 403) forget();
      else throw error;
      return false;
    })
    .finally(() => (renewing = null));
  return renewing;
}

function forget() {
  const was = account;
  access = account = null;
  if (was) watchers.forEach((watch) => watch(null));
}

async function authorization() {
  if (access && Date.now() > access.expires) await renew();
  return access ? { Authorization: `Bearer ${access.token}` } : {};
}

/** Call the API: `request("/posts?sort=hot")`, `request("/posts/1/like", {method: "PUT"})`,
 * `{json}` for a body. Signed in, a 401 renews the access token once and tries again. */
export async function request(path, { method = "GET", json, signal } = {}) {
  const call = async () => {
    const headers = await authorization();
    if (json !== undefined) headers["Content-Type"] = "application/json";
    return send(path, { method, headers, signal, body: json === undefined ? undefined : JSON.stringify(json) });
  };
  try {
    return await call();
  } catch (error) {
    if (error.status === 401 && access && (await renew())) return call();
    throw error;
  }
}

/** The answer to `path` that came with the page (the server puts the first page of an
 * anonymous reader's feed in it), once; null for any other path, the second time, or when
 * the reader turned out to be signed in (a link from another site brings no cookie to the
 * server, but the script finds the session: its page is its own). */
export function given(path) {
  const block = document.getElementById("first-page");
  if (!block || block.dataset.path !== path) return null;
  block.remove();
  return access ? null : JSON.parse(block.textContent);
}

/** Upload a form with a real progress report: `onProgress(sent, total)` as the bytes go. */
export async function upload(form, onProgress) {
  const headers = await authorization();
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${API}/posts`);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.responseType = "json";
    xhr.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded, event.total);
    xhr.onload = () =>
      xhr.status === 202 ? resolve(xhr.response) : reject(new ApiError(xhr.status, xhr.response ?? {}, xhr.getResponseHeader("Retry-After")));
    xhr.onerror = () => reject(new ApiError(0));
    xhr.send(form);
  });
}

// --- the session ------------------------------------------------------------------------

export const me = () => account;

/** Call `watch(account or null)` whenever someone signs in or out. */
export function watchSession(watch) {
  watchers.add(watch);
}

async function loadAccount() {
  account = await request("/users/me");
  watchers.forEach((watch) => watch(account));
  return account;
}

/** Whether this browser may hold a session (it has the CSRF cookie that comes with one). */
export const mayResume = () => csrfToken() !== null;

/** Pick up the session the cookie holds, if any (on page load). */
export async function resume() {
  try {
    if (await renew()) return await loadAccount();
  } catch {
    // offline or failing: signed out for now; the next request says why
  }
  return null;
}

export async function signIn(login, password) {
  keep(await send("/auth/web/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ login, password }) }));
  return loadAccount();
}

export async function register(username, email, password) {
  await request("/auth/register", { method: "POST", json: { username, email, password } });
  return signIn(username, password);
}

export async function signOut() {
  const csrf = csrfToken();
  try {
    if (csrf) await send("/auth/web/logout", { method: "POST", headers: { "X-CSRF-TOKEN": csrf } });
  } finally {
    forget();
  }
}

/** Apply a change to the account (`PATCH /users/me`) and tell the watchers. */
export async function updateAccount(changes) {
  account = await request("/users/me", { method: "PATCH", json: changes });
  watchers.forEach((watch) => watch(account));
  return account;
}

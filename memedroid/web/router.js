// Moving between the client's pages without reloading: main.js draws the page for the address.

/** Show `path` (and remember it in the history, unless `replace`). */
export function go(path, { replace = false } = {}) {
  history[replace ? "replaceState" : "pushState"]({}, "", path);
  dispatchEvent(new Event("navigate"));
}

/** The current address's query parameter `name`. */
export const param = (name) => new URLSearchParams(location.search).get(name);

/** Where `?next=` may send the reader after signing in: a page of this site, never another's. */
export function nextPage() {
  const next = param("next") ?? "/";
  try {
    const target = new URL(next, location.origin);
    if (next.startsWith("/") && target.origin === location.origin) return target.pathname + target.search + target.hash;
  } catch {
    // not an address at all
  }
  return "/";
}

// Moving between the client's pages without reloading: main.js draws the page for the address.

/** Show `path` (and remember it in the history, unless `replace`). */
export function go(path, { replace = false } = {}) {
  history[replace ? "replaceState" : "pushState"]({}, "", path);
  dispatchEvent(new Event("navigate"));
}

/** The current address's query parameter `name`. */
export const param = (name) => new URLSearchParams(location.search).get(name);

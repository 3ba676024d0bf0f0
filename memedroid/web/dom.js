// Building the page. User text only ever becomes text nodes: nothing here parses HTML.

/** An element: `h("a", {href: "/", class: "brand"}, "MemeDroid", child)`. Props starting
 * with "on" are listeners; true sets a bare attribute; null, undefined and false set nothing. */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children.flat(Infinity).filter((child) => child != null && child !== false));
  return element;
}

/** Someone's text set inside a string of ours (a title): its direction stays its own, so a
 * right-to-left override in it stops at its end (the text form of `<bdi>`). */
export const isolated = (text) => `\u2068${text}\u2069`;

/** A link inside the app (the router takes the click). */
export const link = (href, props, ...children) => h("a", { href, ...props }, ...children);

/** The page's main area shows `children` instead of what it showed. */
export function show(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children);
  return main;
}

/** A message for the screen reader and the eye in the status line under the header. */
export function notify(text, kind = "info") {
  const notice = document.getElementById("notice");
  notice.replaceChildren(text ? h("p", { class: `notice ${kind}` }, text) : "");
}

export const empty = (text, ...more) => h("p", { class: "empty" }, text, ...more);

/** A failed load, said in words, with a button that tries again. */
export function failure(error, retry) {
  return h("div", { class: "failure", role: "alert" }, h("p", {}, error.message), retry && h("button", { type: "button", onclick: retry }, "Try again"));
}

const units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/** A `<time>` saying how long ago, its exact moment in the tooltip. */
export function ago(iso) {
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  const [unit, size] = units.find(([, size]) => Math.abs(seconds) >= size) ?? ["second", 1];
  const text = unit === "second" ? "just now" : relative.format(Math.round(seconds / size), unit);
  return h("time", { datetime: iso, title: new Date(iso).toLocaleString() }, text);
}

export const count = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Watch `element` come near the screen: `callback(true)` when it does, `(false)` when it leaves. */
export function whenVisible(element, callback, margin = "0px") {
  const observer = new IntersectionObserver((entries) => entries.forEach((entry) => callback(entry.isIntersecting)), { rootMargin: margin });
  observer.observe(element);
  return observer;
}

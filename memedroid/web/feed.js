// Feeds: hot, new and top, a tag's or an author's, scrolled without end by next_cursor.

import { card } from "./card.js";
import { empty, h, link } from "./dom.js";
import { pager } from "./pager.js";
import { go } from "./router.js";

export const WINDOWS = ["day", "week", "month", "year", "all"];

/** The Hot / New / Top tabs (and Top's window). */
function tabs(current, window) {
  const tab = (href, name, label) => link(href, { class: "tab", "aria-current": current === name ? "page" : null }, label);
  const windows =
    current === "top" &&
    h(
      "label",
      { class: "window" },
      "Top of the ",
      h("select", { onchange: (event) => go(`/top?window=${event.target.value}`) }, WINDOWS.map((w) => h("option", { value: w, selected: w === window }, w === "all" ? "all time" : w)))
    );
  return h("nav", { class: "tabs", "aria-label": "Feeds" }, tab("/", "hot", "Hot"), tab("/new", "new", "New"), tab(`/top?window=${window}`, "top", "Top"), windows);
}

/** A feed: `{sort, window, tag, author}` as GET /posts takes them; `title` heads it. */
export function feed({ sort = "new", window = "week", tag, author, title, showTabs = false }) {
  const query = new URLSearchParams({ sort, limit: "10" });
  if (sort === "top") query.set("window", window);
  if (tag) query.set("tag", tag);
  if (author) query.set("author", author);
  const none = author ? "No memes here yet." : empty("Nothing here yet: ", link("/upload", {}, "post the first meme"), ".");
  const list = h("div", { class: "feed", role: "feed", "aria-label": title ?? "Memes" });
  const [, end] = pager(`/posts?${query}`, (post, i) => card(post, { eager: i === 0 }), { list, none, endless: true });
  return h("section", { class: "feed-page" }, showTabs && tabs(sort, window), title && h("h1", {}, title), list, end);
}

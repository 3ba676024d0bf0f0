// Lists the API pages by next_cursor: a "More" button, or (with `endless`) the next page
// fetched as the end of the list comes near the screen.

import { given, request } from "./client.js";
import { empty, failure, h, whenVisible } from "./dom.js";

/** Fill `list` with `render(item, index)` for the items of `path`'s pages. Answers the list
 * and the element under it (loading, errors, the end). */
export function pager(path, render, { list = h("ol"), none = "Nothing here yet.", endless = false, more = "More" } = {}) {
  const end = h("div", { class: "end" });
  let cursor = null;
  let loading = false;
  let rendered = 0;
  const load = async () => {
    if (loading) return;
    loading = true;
    list.setAttribute("aria-busy", "true");
    end.replaceChildren(h("p", { class: "loading" }, "Loading…"));
    try {
      const page = cursor ? await request(`${path}${path.includes("?") ? "&" : "?"}cursor=${encodeURIComponent(cursor)}`) : given(path) ?? (await request(path));
      page.items.forEach((item) => list.append(render(item, rendered++)));
      cursor = page.next_cursor;
      const last = rendered ? (endless ? h("p", { class: "the-end" }, "You've seen it all.") : "") : typeof none === "string" ? empty(none) : none;
      end.replaceChildren(cursor ? (endless ? "" : h("button", { type: "button", onclick: load }, more)) : last);
    } catch (error) {
      end.replaceChildren(failure(error, load));
      cursor = undefined; // no more automatic pages until "Try again"
    } finally {
      loading = false;
      list.setAttribute("aria-busy", "false");
    }
    if (endless && cursor && end.getBoundingClientRect().top < innerHeight * 2) load(); // a short page: keep filling
  };
  if (endless) whenVisible(end, (visible) => visible && cursor && load(), "0px 0px 150% 0px");
  load();
  return [list, end];
}

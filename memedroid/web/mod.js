// The moderation page: the open reports, grouped by what they report, oldest first, each with
// the actions that resolve them.

import { request } from "./client.js";
import { card } from "./card.js";
import { ago, count, empty, h, link, notify } from "./dom.js";
import { pager } from "./pager.js";

const ACTIONS = {
  post: [["dismiss", "Dismiss"], ["remove", "Remove post"], ["mark_nsfw", "Mark NSFW"], ["ban_author", "Ban author"], ["ban_media", "Ban media"]],
  comment: [["dismiss", "Dismiss"], ["remove", "Remove comment"], ["ban_author", "Ban author"]],
};

function reported(group) {
  const { type, id } = group.target;
  const content = group.content;
  if (!content) return empty(`The ${type} is gone.`);
  if (type === "post") return card(content);
  return h("blockquote", { class: "comment" }, h("p", { class: "author" }, content.author ? `@${content.author.username}` : "someone", " on ", link(`/p/${content.post_id}#comment-${id}`, {}, `post ${content.post_id}`)), h("p", { class: "body" }, content.body ?? "[deleted]"));
}

// The latest notes come with the entry; the rest, a page at a time, when asked for.
function notesOf(group) {
  const { type, id } = group.target;
  const list = h("ul", { class: "notes", "aria-label": "Notes" }, group.notes.map((note) => h("li", {}, note)));
  let cursor = null;
  let shown = group.notes.length;
  const more = h("button", { type: "button", class: "quiet" }, `All ${count(group.note_count, "note")}`);
  more.onclick = async () => {
    try {
      const page = await request(`/mod/reports/${type}s/${id}/notes?limit=50${cursor ? `&cursor=${cursor}` : ""}`);
      if (cursor === null) list.replaceChildren();
      list.append(...page.items.map((item) => h("li", {}, item.note)));
      shown = cursor === null ? page.items.length : shown + page.items.length;
      cursor = page.next_cursor;
      more.hidden = cursor === null;
      more.textContent = `More notes (${shown} of ${group.note_count})`;
    } catch (error) {
      notify(error.message, "error");
    }
  };
  more.hidden = group.note_count <= group.notes.length;
  return group.note_count > 0 && h("div", { class: "report-notes" }, list, more);
}

function entry(group) {
  const { type, id } = group.target;
  const resolve = async (action, label) => {
    const note = action === "dismiss" ? "" : prompt(`${label}: the reason (shown to the author)`, group.reasons.join(", "));
    if (note === null) return;
    try {
      await request(`/mod/reports/${type}s/${id}/resolve`, { method: "POST", json: { action, note: note || undefined } });
      element.replaceChildren(h("p", { class: "done" }, `Resolved: ${label.toLowerCase()}.`));
      notify(`Reports on ${type} ${id} resolved: ${label.toLowerCase()}.`);
    } catch (error) {
      notify(error.message, "error");
    }
  };
  const element = h(
    "li",
    { class: "report-group", "data-target": `${type}-${id}` },
    h("header", {}, h("strong", {}, count(group.report_count, "report")), ` on ${type} ${id} · `, group.reasons.join(", "), " · last ", ago(group.last_reported_at)),
    notesOf(group),
    reported(group),
    h("div", { class: "buttons" }, ACTIONS[type].map(([action, label]) => h("button", { type: "button", class: action === "dismiss" ? "quiet" : "", onclick: () => resolve(action, label) }, label)))
  );
  return element;
}

export function moderationPage() {
  const queue = pager("/mod/reports?status=open", entry, { list: h("ol", { class: "queue" }), none: "No open reports. All clear." });
  return h("div", { class: "moderation" }, h("h1", {}, "Reports"), queue);
}

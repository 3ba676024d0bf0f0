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

function entry(group) {
  const { type, id } = group.target;
  const notes = group.notes.filter(Boolean); // a report may come without one
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
    notes.length > 0 && h("ul", { class: "notes", "aria-label": "Notes" }, notes.map((note) => h("li", {}, note))),
    reported(group),
    h("div", { class: "buttons" }, ACTIONS[type].map(([action, label]) => h("button", { type: "button", class: action === "dismiss" ? "quiet" : "", onclick: () => resolve(action, label) }, label)))
  );
  return element;
}

export function moderationPage() {
  const queue = pager("/mod/reports?status=open", entry, { list: h("ol", { class: "queue" }), none: "No open reports. All clear." });
  return h("div", { class: "moderation" }, h("h1", {}, "Reports"), queue);
}

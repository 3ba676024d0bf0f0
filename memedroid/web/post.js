// A post's own page (/p/{id}): the meme, its thread of comments with replies, a reply box,
// delete for the author and a report dialog for everyone signed in.

import { me, request } from "./client.js";
import { card, likeButton } from "./card.js";
import { ago, count, failure, h, isolated, link, notify } from "./dom.js";
import { pager } from "./pager.js";
import { go } from "./router.js";

const REASONS = { spam: "Spam", nsfw: "Not safe for work", harassment: "Harassment", illegal: "Illegal", copyright: "Copyright", other: "Something else" };

/** Ask why, then report `path` (`/posts/1` or `/comments/2`). */
export function report(path) {
  if (!me()) return go("/signin");
  const error = h("p", { class: "error", role: "alert" });
  const dialog = h(
    "dialog",
    { class: "report", "aria-labelledby": "report-title" },
    h(
      "form",
      { method: "dialog" },
      h("h2", { id: "report-title" }, "Report"),
      h("fieldset", {}, h("legend", {}, "What is wrong with it?"), Object.entries(REASONS).map(([value, label], i) => h("label", { class: "choice" }, h("input", { type: "radio", name: "reason", value, required: true, checked: i === 0 }), ` ${label}`))),
      h("label", {}, "Anything to add (optional)", h("textarea", { name: "note", maxlength: 500, rows: 3 })),
      error,
      h("div", { class: "buttons" }, h("button", { type: "submit", value: "send" }, "Send report"), h("button", { type: "button", class: "quiet", onclick: () => dialog.close() }, "Cancel"))
    )
  );
  dialog.addEventListener("close", () => dialog.remove());
  dialog.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    try {
      await request(`${path}/reports`, { method: "POST", json: { reason: form.get("reason"), note: form.get("note") || undefined } });
      dialog.close();
      notify("Thanks: moderators will look at it.");
    } catch (failed) {
      error.textContent = failed.status === 409 ? "You have reported this already." : failed.message;
    }
  });
  document.body.append(dialog);
  dialog.showModal();
}

/** The box that posts a comment (or, with `parentId`, a reply); `done(comment)` after. */
function composer(postId, parentId, done, label = "Add a comment") {
  if (!me()) return h("p", { class: "hint" }, link("/signin", {}, "Sign in"), " to comment.");
  const error = h("p", { class: "error", role: "alert" });
  const box = h("textarea", { name: "body", required: true, maxlength: 5000, rows: parentId ? 2 : 3, "aria-label": label, placeholder: label });
  return h(
    "form",
    {
      class: "composer",
      onsubmit: async (event) => {
        event.preventDefault();
        const button = event.target.querySelector("button");
        button.disabled = true;
        try {
          const comment = await request(`/posts/${postId}/comments`, { method: "POST", json: { body: box.value, parent_id: parentId ?? undefined } });
          box.value = "";
          error.textContent = "";
          done({ ...comment, replies: [], replies_cursor: null });
        } catch (failed) {
          error.textContent = failed.message;
        } finally {
          button.disabled = false;
        }
      },
    },
    box,
    error,
    h("button", { type: "submit" }, parentId ? "Reply" : "Comment")
  );
}

/** One comment with its replies, and its own buttons. */
function comment(item, postId) {
  const replies = h("ol", { class: "replies" });
  const actions = h("div", { class: "actions" });
  const body = item.deleted ? h("p", { class: "gone" }, "[deleted]") : item.removed && !item.body ? h("p", { class: "gone" }, "[removed by moderators]") : h("p", { class: "body" }, item.body);
  const element = h(
    "li",
    { class: "comment", id: `comment-${item.id}`, "data-comment": item.id },
    h("header", {}, item.author ? link(`/u/${encodeURIComponent(item.author.username)}`, { class: "author" }, `@${item.author.username}`) : h("span", { class: "author" }, "someone"), " · ", ago(item.created_at)),
    body,
    actions,
    replies
  );
  if (!item.deleted && !item.removed) {
    const mine = me() && me().id === item.author?.id;
    actions.append(
      likeButton(`/comments/${item.id}`, item),
      h("button", { type: "button", class: "quiet", onclick: () => toggleReply(item, postId, actions, replies) }, "Reply"),
      mine ? h("button", { type: "button", class: "quiet", onclick: () => erase(item, body) }, "Delete") : h("button", { type: "button", class: "quiet", onclick: () => report(`/comments/${item.id}`) }, "Report")
    );
  }
  item.replies.forEach((reply) => replies.append(comment(reply, postId)));
  if (item.replies_cursor) replies.after(moreReplies(item, replies, postId));
  return element;
}

/** Open a reply box under a comment's buttons, or close the open one. */
function toggleReply(item, postId, actions, replies) {
  const open = actions.nextElementSibling;
  if (open?.matches("form.composer")) return open.remove();
  const box = composer(postId, item.id, (reply) => (replies.prepend(comment(reply, postId)), box.remove()), `Reply to @${item.author?.username ?? "them"}`);
  actions.after(box);
  box.querySelector("textarea")?.focus();
}

async function erase(item, body) {
  if (!confirm("Delete this comment?")) return;
  try {
    await request(`/comments/${item.id}`, { method: "DELETE" });
    body.replaceWith(h("p", { class: "gone" }, "[deleted]"));
  } catch (error) {
    notify(error.message, "error");
  }
}

function moreReplies(item, replies, postId) {
  let cursor = item.replies_cursor;
  const button = h("button", { type: "button", class: "quiet more-replies" }, "More replies");
  button.addEventListener("click", async () => {
    try {
      const page = await request(`/comments/${item.id}/replies?cursor=${encodeURIComponent(cursor)}`);
      page.items.forEach((reply) => replies.append(comment(reply, postId)));
      cursor = page.next_cursor;
      if (!cursor) button.remove();
    } catch (error) {
      notify(error.message, "error");
    }
  });
  return button;
}

/** The thread: top-level comments page by page, each with its first replies. */
function thread(post) {
  const [list, more] = pager(`/posts/${post.id}/comments`, (item) => comment(item, post.id), { list: h("ol", { class: "thread" }), none: "No comments yet.", more: "More comments" });
  const added = (item) => (list.prepend(comment(item, post.id)), more.querySelector(".empty")?.remove());
  return h("section", { id: "comments", "aria-label": "Comments" }, h("h2", {}, count(post.comment_count ?? 0, "comment")), composer(post.id, null, added), list, more);
}

export function postPage(id) {
  const place = h("div", { class: "post-page" }, h("p", { class: "loading" }, "Loading…"));
  const load = async () => {
    try {
      const post = await request(`/posts/${id}`);
      document.title = `${isolated(post.caption || "A meme")} · MemeDroid`;
      const mine = me() && me().id === post.author.id;
      const remove = async () => {
        if (!confirm("Delete this post for good?")) return;
        try {
          await request(`/posts/${post.id}`, { method: "DELETE" });
          notify("Your post is deleted.");
          go("/");
        } catch (error) {
          notify(error.message, "error");
        }
      };
      const extra = mine ? h("button", { type: "button", class: "quiet", onclick: remove }, "Delete") : h("button", { type: "button", class: "quiet", onclick: () => report(`/posts/${post.id}`) }, "Report");
      place.replaceChildren(card(post, { eager: true, extra }), post.status === "completed" ? thread(post) : "");
      if (location.hash === "#comments") document.getElementById("comments")?.scrollIntoView();
    } catch (error) {
      place.replaceChildren(failure(error, error.status === 404 ? null : load));
    }
  };
  load();
  return place;
}

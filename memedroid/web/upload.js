// Posting a meme: pick or drop a file, caption and tags (completed from /tags), a progress bar
// for the bytes, then the post's status live from the long-poll until it completes or fails.

import { ApiError, request, upload } from "./client.js";
import { h, link } from "./dom.js";

const STATUS = { pending: "Waiting for a worker…", processing: "Processing…", completed: "Done: your meme is up.", failed: "Processing failed" };

/** Suggest tags for the last one being typed, from GET /tags?prefix=. */
function tagInput() {
  const list = h("datalist", { id: "tag-suggestions" });
  const input = h("input", { name: "tags", id: "tags", list: "tag-suggestions", autocomplete: "off", placeholder: "cats, funny", "aria-describedby": "tags-hint" });
  let asked = "";
  input.addEventListener("input", async () => {
    const typed = input.value.split(",");
    const prefix = typed.pop().trim().toLowerCase().replace(/^#/, "");
    if (!/^[a-z0-9_]{1,32}$/.test(prefix) || prefix === asked) return;
    asked = prefix;
    try {
      const { items } = await request(`/tags?prefix=${prefix}&limit=8`);
      const before = typed.map((t) => t.trim()).filter(Boolean);
      list.replaceChildren(...items.map((tag) => h("option", { value: [...before, tag.name].join(", ") }, `#${tag.name} (${tag.post_count})`)));
    } catch {
      // suggestions are a convenience: typing goes on without them
    }
  });
  return [input, list];
}

/** Follow a post until it completes or fails, by the long-poll (GET /posts/{id}?wait=); the post then. */
async function follow(post, say) {
  while (post.status === "pending" || post.status === "processing") {
    say(post);
    try {
      post = await request(`/posts/${post.id}?wait=25`);
    } catch (error) {
      if (error.status !== 0 && error.status < 500) throw error;
      await new Promise((resume) => setTimeout(resume, 3000)); // offline or busy: ask again
    }
  }
  say(post);
  return post;
}

export function uploadPage() {
  const file = h("input", { type: "file", name: "file", id: "file", required: true, accept: "image/*,video/*" });
  const chosen = h("span", { class: "chosen" }, "No file chosen");
  const drop = h("label", { class: "drop", for: "file" }, h("strong", {}, "Choose a file"), " or drop it here", h("br"), chosen);
  const progress = h("progress", { max: 100, value: 0, "aria-label": "Upload progress", hidden: true });
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const [tags, suggestions] = tagInput();
  const button = h("button", { type: "submit" }, "Post it");

  const pick = (files) => {
    if (!files?.length) return;
    if (files !== file.files) file.files = files;
    chosen.textContent = `${files[0].name} (${(files[0].size / 1048576).toFixed(1)} MB)`;
  };
  file.addEventListener("change", () => pick(file.files));
  drop.addEventListener("dragover", (event) => (event.preventDefault(), drop.classList.add("over")));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => (event.preventDefault(), drop.classList.remove("over"), pick(event.dataTransfer.files)));

  const say = (post) => {
    status.dataset.status = post.status;
    const said = post.status === "failed" ? `${STATUS.failed}: ${post.error}` : STATUS[post.status];
    status.replaceChildren(said, ...(post.status === "completed" ? [" ", link(`/p/${post.id}`, {}, "See it")] : []));
  };

  const form = h(
    "form",
    { class: "upload" },
    h("h1", {}, "Post a meme"),
    file,
    drop,
    h("label", { for: "caption" }, "Caption"),
    h("textarea", { name: "caption", id: "caption", maxlength: 2000, rows: 2 }),
    h("label", { for: "tags" }, "Tags"),
    tags,
    suggestions,
    h("p", { class: "hint", id: "tags-hint" }, "Separated by commas, up to 10."),
    h("label", { class: "choice" }, h("input", { type: "checkbox", name: "nsfw", value: "true" }), " Not safe for work"),
    button,
    progress,
    status
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file.files.length) return (status.textContent = "Choose a file first.");
    const data = new FormData(form);
    button.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    status.removeAttribute("data-status");
    status.textContent = "Uploading…";
    try {
      const post = await upload(data, (sent, total) => {
        progress.value = Math.round((100 * sent) / total);
        status.textContent = `Uploading… ${progress.value}%`;
      });
      progress.value = 100;
      if ((await follow(post, say)).status === "completed") {
        form.reset();
        chosen.textContent = "No file chosen";
      }
    } catch (error) {
      status.dataset.status = "error";
      status.textContent = error instanceof ApiError ? error.message : String(error);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

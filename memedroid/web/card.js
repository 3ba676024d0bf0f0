// A post as the feed and its own page show it: the media in a box of its own size (no layout
// shift), the blurhash under it until it loads, and the actions under it.

import { me, request } from "./client.js";
import { placeholder } from "./blurhash.js";
import { ago, count, h, link, notify, whenVisible } from "./dom.js";
import { go } from "./router.js";

const calm = matchMedia("(prefers-reduced-motion: reduce)");

/** Play a muted, looping video while it is on screen, and pause it off screen. */
function autoplay(video) {
  if (calm.matches) {
    video.controls = true; // motion only when asked for
    return;
  }
  whenVisible(video, (visible) => (visible ? video.play().catch(() => {}) : video.pause()), "-20% 0px");
}

/** The media of a completed post. `eager` for the first on the page (it is the one painted first). */
export function media(post, { eager = false } = {}) {
  const { kind, url, thumbnail_url: poster, width, height, blurhash } = post.media;
  const frame = h("div", { class: "frame" }); // sized by the media's width and height attributes
  const cover = placeholder(blurhash, width / height);
  const label = post.caption || `A meme by ${post.author.username}`;
  let shown;
  if (kind === "image") {
    // The loading hints go before the source: an image fetches as soon as it has a src.
    const hints = { loading: eager ? "eager" : "lazy", fetchpriority: eager ? "high" : null, elementtiming: eager ? "first-meme" : null };
    shown = h("img", { ...hints, decoding: "async", alt: label, width, height, src: url });
  } else {
    shown = h("video", { preload: eager ? "auto" : "metadata", muted: true, loop: post.media.loop, playsinline: true, width, height, "aria-label": label, poster, src: url });
    shown.muted = true;
    autoplay(shown);
  }
  const loaded = () => frame.classList.add("loaded");
  shown.addEventListener(kind === "image" ? "load" : "loadeddata", loaded, { once: true });
  if (shown.complete) loaded();
  frame.append(...[cover, shown].filter(Boolean));
  if (post.nsfw) {
    frame.classList.add("nsfw");
    frame.append(h("button", { type: "button", class: "reveal", onclick: (event) => (frame.classList.remove("nsfw"), event.currentTarget.remove()) }, "NSFW: tap to show"));
  }
  return frame;
}

/** The like button: the count changes at once, and back if the server says no. */
export function likeButton(path, item) {
  let liked = Boolean(item.liked_by_me);
  let likes = item.like_count;
  const button = h("button", { type: "button", class: "like" });
  const paint = () => {
    button.setAttribute("aria-pressed", String(liked));
    button.setAttribute("aria-label", `${liked ? "Unlike" : "Like"} (${count(likes, "like")})`);
    button.replaceChildren(h("span", { "aria-hidden": "true" }, liked ? "♥" : "♡"), ` ${likes}`);
  };
  button.addEventListener("click", async () => {
    if (!me()) return go("/signin");
    liked = !liked;
    likes += liked ? 1 : -1;
    paint();
    try {
      await request(`${path}/like`, { method: liked ? "PUT" : "DELETE" });
    } catch (error) {
      liked = !liked;
      likes += liked ? 1 : -1;
      paint();
      notify(error.message, "error");
    }
  });
  paint();
  return button;
}

export const tagLinks = (tags) => (tags.length ? h("p", { class: "tags" }, tags.map((tag) => [link(`/t/${encodeURIComponent(tag)}`, { class: "tag" }, `#${tag}`), " "])) : null);

/** A post as a card: author, caption, media, tags, likes and comments. */
export function card(post, { eager = false, extra = [] } = {}) {
  const page = `/p/${post.id}`;
  const repost = post.repost_of && h("p", { class: "badge" }, "Repost of ", link(`/p/${post.repost_of.post_id}`, {}, `a post by ${post.repost_of.author}`));
  return h(
    "article",
    { class: "card", "aria-labelledby": `caption-${post.id}`, "data-post": post.id },
    h("header", {}, link(`/u/${encodeURIComponent(post.author.username)}`, { class: "author" }, `@${post.author.username}`), " · ", link(page, { class: "when" }, ago(post.created_at))),
    h("h2", { class: "caption", id: `caption-${post.id}` }, link(page, {}, post.caption || "Untitled")),
    repost,
    post.removed && h("p", { class: "badge warn" }, "Removed by moderators: ", h("bdi", {}, post.removed.reason)),
    post.media ? media(post, { eager }) : h("p", { class: "status", "data-status": post.status }, post.status === "failed" ? `Failed: ${post.error}` : `This post is ${post.status}…`),
    tagLinks(post.tags),
    h("footer", { class: "actions" }, likeButton(`/posts/${post.id}`, post), link(`${page}#comments`, { class: "comments" }, count(post.comment_count ?? 0, "comment")), extra)
  );
}

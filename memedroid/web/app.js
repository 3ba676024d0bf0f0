// The web client's entry: the header for the session, and the page for the address.

import { mayResume, me, resume, signOut, watchSession } from "./api.js";
import { h, link, notify, show } from "./dom.js";
import { feed, WINDOWS } from "./feed.js";
import { moderationPage } from "./mod.js";
import { postPage } from "./post.js";
import { profilePage, registerPage, settingsPage, signInPage } from "./account.js";
import { go, param } from "./router.js";
import { uploadPage } from "./upload.js";

const signedIn = (page) => () => (me() ? page() : go(`/signin?next=${encodeURIComponent(location.pathname)}`, { replace: true }));
const moderator = () => ["moderator", "admin"].includes(me()?.role);

/** Each address the client knows: a pattern, the page's title and how to draw it. */
const ROUTES = [
  [/^\/$/, "Hot", () => feed({ sort: "hot", showTabs: true })],
  [/^\/new$/, "New", () => feed({ sort: "new", showTabs: true })],
  [/^\/top$/, "Top", () => feed({ sort: "top", window: WINDOWS.includes(param("window")) ? param("window") : "week", showTabs: true })],
  [/^\/t\/([^/]+)$/, (tag) => `#${tag}`, (tag) => feed({ tag, title: `#${tag}` })],
  [/^\/u\/([^/]+)$/, (name) => `@${name}`, profilePage],
  [/^\/p\/(\d+)$/, "Meme", postPage],
  [/^\/upload$/, "Post a meme", signedIn(uploadPage)],
  [/^\/signin$/, "Sign in", signInPage],
  [/^\/register$/, "Create an account", registerPage],
  [/^\/settings$/, "Settings", signedIn(settingsPage)],
  [/^\/mod$/, "Reports", signedIn(() => (moderator() ? moderationPage() : h("p", { class: "empty" }, "Only moderators see the report queue.")))],
];

function render() {
  for (const [pattern, title, page] of ROUTES) {
    const match = pattern.exec(location.pathname);
    if (!match) continue;
    const args = match.slice(1).map(decodeURIComponent);
    document.title = `${typeof title === "function" ? title(...args) : title} · MemeDroid`;
    const view = page(...args);
    if (view) show(view);
    return;
  }
  document.title = "Not found · MemeDroid";
  show(h("p", { class: "empty" }, "There is no page here. ", link("/", {}, "Back to the memes")));
}

function header(account) {
  const nav = document.getElementById("account");
  const out = async () => {
    await signOut().catch((error) => notify(error.message, "error"));
    go("/");
  };
  nav.replaceChildren(
    ...(account
      ? [
          link("/upload", { class: "button" }, "Post"),
          link(`/u/${encodeURIComponent(account.username)}`, {}, `@${account.username}`),
          moderator() && link("/mod", {}, "Reports"),
          link("/settings", {}, "Settings"),
          h("button", { type: "button", class: "quiet", onclick: out }, "Sign out"),
        ].filter(Boolean)
      : [link("/signin", {}, "Sign in"), link("/register", { class: "button" }, "Join")])
  );
}

// Links inside the app change the page without a reload.
document.addEventListener("click", (event) => {
  const anchor = event.target.closest("a[href]");
  if (!anchor || anchor.origin !== location.origin || anchor.target || anchor.hasAttribute("download")) return;
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  if (anchor.pathname.startsWith("/api/") || anchor.pathname.startsWith("/media/")) return;
  event.preventDefault();
  if (anchor.pathname + anchor.search === location.pathname + location.search) return anchor.hash ? document.querySelector(anchor.hash)?.scrollIntoView() : undefined;
  go(anchor.pathname + anchor.search + anchor.hash);
});
addEventListener("navigate", () => (notify(""), render(), scrollTo(0, 0)));
addEventListener("popstate", render);
addEventListener("offline", () => notify("You're offline: what you see may be out of date.", "error"));
addEventListener("online", () => notify(""));

watchSession((account) => {
  header(account);
  if (!account && ["/upload", "/settings", "/mod"].includes(location.pathname)) go("/", { replace: true });
});
header(null);
// A browser that holds a session cookie gets its own view (likes, NSFW, blocks) at once;
// anyone else gets the public page without waiting.
if (mayResume()) resume().then(render);
else render();

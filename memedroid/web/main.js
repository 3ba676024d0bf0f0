// The web client's entry: the header for the session, and the page for the address.

import { mayResume, me, resume, signOut, watchSession } from "./client.js";
import { h, isolated, link, notify, show } from "./dom.js";
import { feed, WINDOWS } from "./feed.js";
import { go, param } from "./router.js";

// The feeds come with the page; the other views load when first shown.
const account = () => import("./account.js");
const post = () => import("./post.js");
const upload = () => import("./upload.js");
const moderation = () => import("./mod.js");

const signedIn = (page) => () => (me() ? page() : go(`/signin?next=${encodeURIComponent(location.pathname)}`, { replace: true }));
const moderator = () => ["moderator", "admin"].includes(me()?.role);
const onlyModerators = () => h("p", { class: "empty" }, "Only moderators see the report queue.");

/** Each address the client knows: a pattern, the page's title and how to draw it. */
const ROUTES = [
  [/^\/$/, "Hot", () => feed({ sort: "hot", showTabs: true })],
  [/^\/new$/, "New", () => feed({ sort: "new", showTabs: true })],
  [/^\/top$/, "Top", () => feed({ sort: "top", window: WINDOWS.includes(param("window")) ? param("window") : "week", showTabs: true })],
  [/^\/t\/([^/]+)$/, (tag) => `#${tag}`, (tag) => feed({ tag, title: `#${tag}` })],
  [/^\/u\/([^/]+)$/, (name) => `@${name}`, async (name) => (await account()).profilePage(name)],
  [/^\/p\/(\d+)$/, "Meme", async (id) => (await post()).postPage(id)],
  [/^\/upload$/, "Post a meme", signedIn(async () => (await upload()).uploadPage())],
  [/^\/signin$/, "Sign in", async () => (await account()).signInPage()],
  [/^\/register$/, "Create an account", async () => (await account()).registerPage()],
  [/^\/settings$/, "Settings", signedIn(async () => (await account()).settingsPage())],
  [/^\/mod$/, "Reports", signedIn(async () => (moderator() ? (await moderation()).moderationPage() : onlyModerators()))],
];

/** A part of the address as text; null when its percent-encoding is malformed (`%E0%A4%A`). */
function decoded(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
}

async function render() {
  const address = location.href;
  for (const [pattern, title, page] of ROUTES) {
    const match = pattern.exec(location.pathname);
    if (!match) continue;
    const args = match.slice(1).map(decoded);
    if (args.includes(null)) break; // a malformed address: there is no such page
    document.title = `${typeof title === "function" ? isolated(title(...args)) : title} · MemeDroid`;
    try {
      const view = await page(...args);
      if (view && location.href === address) show(view); // unless the reader moved on meanwhile
    } catch {
      show(h("div", { class: "failure", role: "alert" }, h("p", {}, "This page could not load: check your connection."), h("button", { type: "button", onclick: render }, "Try again")));
    }
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
// anyone else gets the public page at once.
if (mayResume()) resume().then(render);
else render();

// Accounts: register, sign in, a user's profile with their memes, and the settings page
// (NSFW opt-in and the accounts one blocks).

import { me, register, request, signIn, updateAccount } from "./client.js";
import { count, failure, h, link, notify } from "./dom.js";
import { feed } from "./feed.js";
import { pager } from "./pager.js";
import { go, nextPage } from "./router.js";

/** A form of labelled fields whose submit calls `action(values)`; its error shown in words. */
function form(title, fields, submit, action, footer) {
  const error = h("p", { class: "error", role: "alert" });
  const button = h("button", { type: "submit" }, submit);
  const element = h(
    "form",
    { class: "account" },
    h("h1", {}, title),
    fields.map(([name, label, props]) => [h("label", { for: name }, label), h("input", { id: name, name, required: true, ...props })]),
    error,
    button,
    footer
  );
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    error.textContent = "";
    try {
      await action(Object.fromEntries(new FormData(element)));
    } catch (failed) {
      error.textContent = failed.status === 401 ? "That username or password is wrong." : failed.message;
    } finally {
      button.disabled = false;
    }
  });
  return element;
}

const back = () => go(nextPage(), { replace: true });

export function signInPage() {
  return form(
    "Sign in",
    [
      ["login", "Username or email", { autocomplete: "username" }],
      ["password", "Password", { type: "password", autocomplete: "current-password" }],
    ],
    "Sign in",
    ({ login, password }) => signIn(login, password).then(back),
    h("p", { class: "hint" }, "New here? ", link("/register", {}, "Create an account"))
  );
}

export function registerPage() {
  return form(
    "Create an account",
    [
      ["username", "Username", { autocomplete: "username", pattern: "[A-Za-z0-9_]{3,30}", "aria-describedby": "username-hint" }],
      ["email", "Email", { type: "email", autocomplete: "email" }],
      ["password", "Password", { type: "password", autocomplete: "new-password", minlength: 8 }],
    ],
    "Create account",
    ({ username, email, password }) => register(username, email, password).then(back),
    [h("p", { class: "hint", id: "username-hint" }, "3 to 30 letters, digits or underscores."), h("p", { class: "hint" }, "Have one? ", link("/signin", {}, "Sign in"))]
  );
}

/** Block or unblock `username`: the button says which it will do next. */
function blockButton(username, blocked = false) {
  const button = h("button", { type: "button", class: "quiet" });
  const paint = () => (button.textContent = blocked ? "Unblock" : "Block");
  button.addEventListener("click", async () => {
    try {
      await request(`/users/${encodeURIComponent(username)}/block`, { method: blocked ? "DELETE" : "PUT" });
      blocked = !blocked;
      paint();
      notify(blocked ? `You won't see @${username}'s posts and comments.` : `@${username} is unblocked.`);
    } catch (error) {
      notify(error.message, "error");
    }
  });
  paint();
  return button;
}

export function profilePage(username) {
  const head = h("header", { class: "profile" }, h("h1", {}, `@${username}`));
  request(`/users/${encodeURIComponent(username)}`).then(
    (user) => {
      head.append(h("p", {}, `${count(user.post_count, "meme")} · ${count(user.like_count, "like")} · ${count(user.comment_count, "comment")}`));
      if (me() && me().id !== user.id) head.append(blockButton(user.username));
    },
    (error) => head.append(failure(error))
  );
  return h("div", {}, head, feed({ author: username, title: `Memes by @${username}` }));
}

/** The accounts one blocks, with a button to unblock each. */
function blocks() {
  const row = (user) => h("li", {}, link(`/u/${encodeURIComponent(user.username)}`, {}, `@${user.username}`), " ", blockButton(user.username, true));
  return h("section", { "aria-labelledby": "blocks-title" }, h("h2", { id: "blocks-title" }, "Blocked accounts"), pager("/users/me/blocks", row, { list: h("ul", { class: "blocks" }), none: "You block no one." }));
}

export function settingsPage() {
  const account = me();
  const nsfw = h("input", { type: "checkbox", id: "show-nsfw", checked: account.show_nsfw });
  nsfw.addEventListener("change", async () => {
    try {
      await updateAccount({ show_nsfw: nsfw.checked });
      notify(nsfw.checked ? "NSFW posts will show in your feeds, blurred until you tap them." : "NSFW posts are hidden from your feeds.");
    } catch (error) {
      nsfw.checked = !nsfw.checked;
      notify(error.message, "error");
    }
  });
  return h(
    "div",
    { class: "settings" },
    h("h1", {}, "Settings"),
    h("p", {}, `Signed in as @${account.username} (${account.email}).`),
    h("section", {}, h("h2", {}, "Feeds"), h("label", { class: "choice", for: "show-nsfw" }, nsfw, " Show posts marked not safe for work")),
    blocks()
  );
}

// The inspector's shell: log in, route #/... views into <main>, report errors.
// Views are plain functions returning DOM nodes (threads.js, run.js, stores.js).

import { ApiError, api, auth } from "./api.js";
import { h, notice } from "./dom.js";
import { runView } from "./run.js";
import { chunksView, storeView, storesView } from "./stores.js";
import { threadView, threadsView } from "./threads.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const logout = document.getElementById("logout");
const status = document.getElementById("status");

const ROUTES = [
  [/^\/threads\/([^/]+)\/runs\/([^/]+)$/, runView],
  [/^\/threads\/([^/]+)$/, threadView],
  [/^\/threads$/, threadsView],
  [/^\/stores\/([^/]+)\/files\/([^/]+)$/, chunksView],
  [/^\/stores\/([^/]+)$/, storeView],
  [/^\/stores$/, storesView],
];

let open = false; // no keys configured on this server: everything local is visible
let shown = 0; // the latest navigation; older ones finishing late are dropped

async function probe() {
  try {
    await api("/threads", { query: { limit: 1 } });
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return false;
    throw error;
  }
}

function loginForm(message) {
  const input = h("input", {
    id: "key",
    type: "password",
    autocomplete: "off",
    required: true,
    "aria-describedby": "key-help",
  });
  const form = h(
    "form",
    { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in"),
    h("label", { for: "key" }, "API key"),
    input,
    h(
      "p",
      { id: "key-help", class: "help" },
      "The key stays in this browser tab (session storage). It sees exactly what it sees " +
        "through the API: its own project.",
    ),
    message ? h("p", { class: "error", role: "alert" }, message) : null,
    h("button", { type: "submit" }, "Log in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    auth.set(input.value.trim());
    if (await probe()) {
      await route();
    } else {
      auth.clear();
      show(loginForm("That key was refused."));
    }
  });
  return form;
}

function show(node) {
  main.replaceChildren(node);
  const heading = main.querySelector("h1");
  (heading || main).setAttribute("tabindex", "-1");
  (heading || main).focus();
  status.textContent = heading ? heading.textContent : "";
}

async function route() {
  const token = ++shown;
  const loggedIn = open || Boolean(auth.key);
  nav.hidden = !loggedIn;
  logout.hidden = open || !auth.key;
  who.textContent = open ? "No API keys configured: the local default project" : "";
  if (!loggedIn) {
    show(loginForm());
    return;
  }
  const [path, search] = (location.hash.slice(1) || "/threads").split("?");
  const params = new URLSearchParams(search || "");
  for (const [pattern, view] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    main.replaceChildren(h("p", { "aria-busy": "true" }, "Loading…"));
    try {
      const node = await view(...match.slice(1).map(decodeURIComponent), params);
      if (token === shown) show(node);
    } catch (error) {
      if (token !== shown) return;
      if (error instanceof ApiError && error.status === 401 && !open) {
        auth.clear();
        show(loginForm("The key is no longer accepted."));
      } else if (error instanceof ApiError && error.status === 404) {
        show(h("div", {}, h("h1", {}, "Not found"), notice(error.message)));
      } else {
        show(h("div", {}, h("h1", {}, "Error"), notice(String(error.message || error), "error")));
      }
    }
    return;
  }
  show(h("div", {}, h("h1", {}, "Not found"), notice(`No view at ${path}.`)));
}

logout.addEventListener("click", () => {
  auth.clear();
  location.hash = "#/threads";
  route();
});
document.getElementById("skip").addEventListener("click", () => main.focus());
window.addEventListener("hashchange", route);

(async () => {
  if (!auth.key) open = await probe().catch(() => false);
  await route();
})();

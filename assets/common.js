// Shared by every page: the session (tokens in sessionStorage only), the JSON API client, the
// navigation bar, and small DOM helpers. Text always goes in through textContent, never as HTML.
"use strict";

const Session = {
  get access() { return sessionStorage.getItem("claribi.access"); },
  get refresh() { return sessionStorage.getItem("claribi.refresh"); },
  get user() {
    try { return JSON.parse(sessionStorage.getItem("claribi.user") || "null"); } catch { return null; }
  },
  save({ access, refresh, user }) {
    if (access) sessionStorage.setItem("claribi.access", access);
    if (refresh) sessionStorage.setItem("claribi.refresh", refresh);
    if (user) sessionStorage.setItem("claribi.user", JSON.stringify(user));
  },
  clear() {
    for (const k of ["claribi.access", "claribi.refresh", "claribi.user"]) sessionStorage.removeItem(k);
  },
  isAdmin() {
    const u = this.user;
    return !!u && (u.role === "administrator" || u.role === "owner");
  },
};

/** An API answer that is not 2xx: `code` is the contract's `error` field. */
class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `request failed (${status})`);
    this.status = status;
    this.code = body && body.error;
    this.body = body || {};
  }
}

async function send(method, path, body) {
  const headers = {};
  if (Session.access) headers["Authorization"] = `Bearer ${Session.access}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

let refreshing = null;

/** One refresh at a time; false when the session is over. */
async function refreshAccess() {
  if (!Session.refresh) return false;
  refreshing = refreshing || (async () => {
    const r = await fetch("/api/auth/token/refresh/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh: Session.refresh }),
    });
    if (!r.ok) return false;
    Session.save(await r.json());
    return true;
  })().finally(() => { refreshing = null; });
  return refreshing;
}

/** Calls the JSON API; refreshes an expired access token once; returns the parsed body. */
async function api(method, path, body) {
  const signingIn = path === "/api/auth/login/";
  let r = await send(method, path, body);
  if (r.status === 401 && !signingIn && (await refreshAccess())) {
    r = await send(method, path, body);
  }
  if (r.status === 401 && !signingIn) {
    Session.clear();
    location.assign("/login");
    throw new ApiError(401, { message: "Your session has ended." });
  }
  const text = await r.text();
  let parsed = null;
  if (text) {
    try { parsed = JSON.parse(text); } catch { parsed = { message: text }; }
  }
  if (!r.ok) throw new ApiError(r.status, parsed);
  return parsed;
}

/** The raw response (for downloads), with the same refresh rule. */
async function apiRaw(path) {
  let r = await send("GET", path);
  if (r.status === 401 && (await refreshAccess())) r = await send("GET", path);
  if (!r.ok) {
    let parsed = null;
    try { parsed = await r.json(); } catch { /* not JSON */ }
    throw new ApiError(r.status, parsed);
  }
  return r;
}

/** el("td", {class: "x"}, "text", child, ...): an element; strings become text nodes. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const $ = (selector, root) => (root || document).querySelector(selector);

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

/** Shows `text` in the page's message box (class ok or error); empty text hides it. */
function say(text, kind, box) {
  const target = box || $("#message");
  if (!target) return;
  target.textContent = text || "";
  target.className = `message ${kind || "error"}`;
  target.hidden = !text;
}

/** Runs an async action from a button or form, disabling it and reporting failures. */
async function act(control, action, box) {
  if (control) control.disabled = true;
  try {
    say("", "ok", box);
    await action();
  } catch (e) {
    say(e instanceof ApiError ? e.message : String(e), "error", box);
  } finally {
    if (control) control.disabled = false;
  }
}

/** Every page but /login: no token, no page. Draws the navigation. */
function requireSession() {
  if (!Session.access) {
    location.replace("/login");
    return false;
  }
  drawNav();
  return true;
}

function drawNav() {
  const nav = $("header.nav");
  if (!nav) return;
  const links = [
    ["/settings/developer/api-keys", "API keys"],
    ["/settings/security", "Security"],
  ];
  if (Session.isAdmin()) links.push(["/admin/users", "Users"], ["/admin/audit", "Audit log"]);
  links.push(["/docs/api", "API reference"]);
  const user = Session.user;
  nav.replaceChildren(
    el("span", { class: "brand" }, "clariBI"),
    ...links.map(([href, label]) =>
      el("a", { href, class: location.pathname.replace(/\/$/, "") === href ? "current" : null }, label)),
    el("span", { class: "spacer" }),
    el("span", { class: "muted", id: "whoami" }, user ? `${user.email} (${user.role})` : ""),
    el("button", { class: "secondary", id: "logout", onclick: logout }, "Sign out"),
  );
}

async function logout() {
  try {
    if (Session.refresh) await api("POST", "/api/auth/logout/", { refresh: Session.refresh });
  } catch { /* the session may already be gone */ }
  Session.clear();
  location.assign("/login");
}

/** Keeps the stored user (role, MFA) current: a role change shows on the next page load. */
async function refreshUser() {
  const me = await api("GET", "/api/auth/me/");
  Session.save({ user: me });
  drawNav();
  return me;
}

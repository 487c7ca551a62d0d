// Shared by every page: the session (tokens in sessionStorage only), the JSON API client, the
// navigation bar, and small DOM helpers. Text always goes in through textContent, never as HTML.
import { MAIN, SETTINGS } from "./pages.js";

export const Session = {
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
    for (const k of ["claribi.access", "claribi.refresh", "claribi.user", "claribi.change-password", "claribi.expiring"]) {
      sessionStorage.removeItem(k);
    }
  },
  isAdmin() {
    const u = this.user;
    return !!u && (u.role === "administrator" || u.role === "owner");
  },
};

/** An API answer that is not 2xx: `code` is the contract's `error` field. */
export class ApiError extends Error {
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

/** A claim of a token (`sid`, `exp`), read without checking it: the server checks tokens. */
function claim(token, name) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload))[name] ?? null;
  } catch { return null; }
}

// The other tabs of this console, over a same-origin channel (the tokens never touch cookies
// or localStorage): a new tab takes the session from an open one, a refreshed token reaches
// every tab of the session, and signing out in one signs out the others.
const tabs = typeof BroadcastChannel === "function" ? new BroadcastChannel("claribi.session") : null;
let asking = null;

if (tabs) {
  tabs.onmessage = ({ data }) => {
    if (!data || typeof data !== "object") return;
    const mine = Session.access && claim(Session.access, "sid") === data.sid;
    // Of two copies of a session's tokens, the later issued is kept (a late message never
    // puts back a refresh token that was rotated away).
    const newer = typeof data.access === "string"
      && (!Session.access || (claim(data.access, "iat") ?? 0) >= (claim(Session.access, "iat") ?? 0));
    if (data.type === "ask" && Session.access) {
      tabs.postMessage({ type: "share", access: Session.access, refresh: Session.refresh, user: Session.user });
    } else if ((data.type === "share" || data.type === "tokens") && asking && data.access) {
      Session.save(data);
      asking(true);
    } else if (data.type === "tokens" && mine && newer) {
      Session.save(data);
      scheduleRefresh();
    } else if (data.type === "signed-out" && mine) {
      Session.clear();
      location.assign("/login");
    }
  };
}

/** Takes the session of another open tab, if one answers within a moment. */
export function askOtherTabs() {
  if (!tabs || Session.access) return Promise.resolve(!!Session.access);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { asking = null; resolve(false); }, 400);
    asking = (found) => { asking = null; clearTimeout(timer); resolve(found); };
    tabs.postMessage({ type: "ask" });
  });
}

let refreshing = null;

/** One refresh at a time, across this browser's tabs of the session: `"renewed"`, `"ended"`
 *  (the server refused the refresh token: the session is over) or `"unavailable"` (no answer,
 *  or the server busy: the session may well go on). With refresh tokens rotated, a tab that
 *  waited takes the tokens the other got. */
async function refreshAccess() {
  if (!Session.refresh) return "ended";
  refreshing = refreshing || (async () => {
    const presented = Session.refresh;
    const run = async () => {
      if (Session.refresh !== presented) return "renewed";
      let r;
      try {
        r = await fetch("/api/auth/token/refresh/", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh: Session.refresh }),
        });
      } catch {
        return "unavailable";
      }
      if (r.status === 401 || r.status === 400) return "ended";
      if (!r.ok) return "unavailable";
      Session.save(await r.json());
      if (tabs) {
        tabs.postMessage({ type: "tokens", sid: claim(Session.access, "sid"), access: Session.access, refresh: Session.refresh });
        // The other tabs take them before one of them may begin a refresh of its own.
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return "renewed";
    };
    return navigator.locks ? navigator.locks.request("claribi.refresh", run) : run();
  })().finally(() => { refreshing = null; });
  return refreshing;
}

let refreshTimer = null;

/** Refreshes the access token a minute before it expires, so that no request meets it
 *  expired and a page left open stays signed in while its session lasts. */
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const exp = Session.access && claim(Session.access, "exp");
  if (!exp) return;
  // At most a day at a time (a timer's limit is 24.8 days; a long token is simply looked at
  // again), at least 5 s.
  const wait = Math.min(Math.max(exp * 1000 - Date.now() - 60_000, 5_000), 86_400_000);
  refreshTimer = setTimeout(async () => {
    const outcome = await refreshAccess();
    if (outcome === "renewed") scheduleRefresh();
    // The server busy or out of reach: try again shortly; an ended session is found by the
    // next request.
    else if (outcome === "unavailable") refreshTimer = setTimeout(scheduleRefresh, 30_000);
  }, wait);
}

const RESUME = "claribi.resume";
/** How long what a page held waits for its user to sign in again. */
const RESUME_MS = 30 * 60 * 1000;
const NEVER_KEPT = ["password", "file", "hidden"];

/** The session is over: the fields of the page's forms that ask for it (`data-resume`, set
 *  while a form adds something new, never while it edits) are kept in this tab, never a
 *  password, and signing in again comes back here. */
function sessionEnded() {
  if (location.pathname === "/login") {
    Session.clear();
    return;
  }
  const fields = {};
  for (const field of document.querySelectorAll("form[data-resume] input[id], form[data-resume] textarea[id], form[data-resume] select[id]")) {
    if (NEVER_KEPT.includes(field.type)) continue;
    fields[field.id] = field.type === "checkbox" || field.type === "radio" ? field.checked : field.value;
  }
  const place = location.pathname + location.search + location.hash;
  const user = Session.user ? Session.user.id : null;
  sessionStorage.setItem(RESUME, JSON.stringify({ place, fields, user, at: Date.now() }));
  Session.clear();
  location.assign(`/login?next=${encodeURIComponent(place)}&ended=1`);
}

/** Puts back what this page's forms held when its session ended, once the same user signed
 *  in again: pages call it once they are drawn. */
export function resumeFields() {
  let saved;
  try { saved = JSON.parse(sessionStorage.getItem(RESUME) || "null"); } catch { saved = null; }
  if (!saved) return;
  const late = Date.now() - saved.at > RESUME_MS;
  if (late) sessionStorage.removeItem(RESUME);
  if (late || saved.place.split("#")[0] !== location.pathname + location.search) return;
  sessionStorage.removeItem(RESUME);
  if (!Session.user || saved.user !== Session.user.id) return;
  let restored = 0;
  for (const [id, value] of Object.entries(saved.fields || {})) {
    const field = document.getElementById(id);
    if (!field || NEVER_KEPT.includes(field.type) || !field.closest("form[data-resume]")) continue;
    if (typeof value === "boolean") field.checked = value;
    else field.value = value;
    for (const kind of ["input", "change"]) field.dispatchEvent(new Event(kind, { bubbles: true }));
    restored += 1;
  }
  const main = $("main");
  if (restored && main) {
    main.prepend(el("div", { class: "message ok", id: "resumed", role: "status" },
      "You are signed in again, and what you had typed is back: check it, then carry on."));
  }
}

/** Calls the JSON API; refreshes an expired access token once; returns the parsed body. */
export async function api(method, path, body) {
  // A 401 to a request without a session (a login, a passkey) is that request's own answer.
  const withSession = !!Session.access;
  let r = await send(method, path, body);
  if (r.status === 401 && withSession) {
    const outcome = await refreshAccess();
    if (outcome === "renewed") r = await send(method, path, body);
    else if (outcome === "unavailable") {
      throw new ApiError(503, { message: "The server could not renew your session just now: try again in a moment." });
    }
  }
  if (r.status === 401 && withSession) {
    sessionEnded();
    throw new ApiError(401, { message: "Your session has ended." });
  }
  const text = await r.text();
  let parsed = null;
  if (text) {
    try { parsed = JSON.parse(text); } catch { parsed = { message: text }; }
  }
  // A session opened with a temporary password reaches only the password change: any page
  // that asks for more goes there.
  if (r.status === 403 && parsed && parsed.error === "password_change_required"
      && location.pathname !== "/settings/security") {
    sessionStorage.setItem("claribi.change-password", "required");
    location.assign("/settings/security#password");
  }
  // So does one whose organization requires two-factor authentication it has not set up.
  if (r.status === 403 && parsed && parsed.error === "mfa_enrollment_required"
      && location.pathname !== "/settings/security") {
    location.assign("/settings/security#mfa");
  }
  if (!r.ok) throw new ApiError(r.status, parsed);
  return parsed;
}

/** The raw response (for downloads), with the same refresh rule. */
export async function apiRaw(path) {
  let r = await send("GET", path);
  if (r.status === 401 && (await refreshAccess()) === "renewed") r = await send("GET", path);
  if (r.status === 401) {
    sessionEnded();
    throw new ApiError(401, { message: "Your session has ended." });
  }
  if (!r.ok) {
    let parsed = null;
    try { parsed = await r.json(); } catch { /* not JSON */ }
    throw new ApiError(r.status, parsed);
  }
  return r;
}

/** el("td", {class: "x"}, "text", child, ...): an element; strings become text nodes. */
export function el(tag, attrs, ...children) {
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

export const $ = (selector, root) => (root || document).querySelector(selector);

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** A time as local ISO-like text with its zone: `2026-12-01 16:05 UTC+1`. */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  const offset = -d.getTimezoneOffset();
  const zone = offset === 0 ? "UTC"
    : `UTC${offset > 0 ? "+" : "−"}${Math.floor(Math.abs(offset) / 60)}${Math.abs(offset) % 60 ? ":" + pad(Math.abs(offset) % 60) : ""}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())} ${zone}`;
}

/** Shows `text` in the page's message box (class ok or error); empty text hides it. */
export function say(text, kind, box) {
  const target = box || $("#message");
  if (!target) return;
  target.textContent = text || "";
  target.className = `message ${kind || "error"}`;
  target.hidden = !text;
}

/** Runs an async action from a button or form, disabling it and reporting failures: field
 *  errors next to their fields when `box` is inside a form, the message in `box` (or the page's
 *  message box), scrolled into view. */
export async function act(control, action, box) {
  if (control) control.disabled = true;
  const form = box && box.closest ? box.closest("form") : null;
  try {
    say("", "ok", box);
    if (form) clearFieldErrors(form);
    await action();
  } catch (e) {
    const left = form && e instanceof ApiError ? showFieldErrors(form, e) : null;
    // Problems of fields the form does not show are said in the box, with the rest.
    const text = left === null ? errorText(e)
      : [left.marked ? "Please correct the fields marked below." : "", ...left.others].filter(Boolean).join(" ")
        || errorText(e);
    say(text, "error", box);
    const target = (form && form.querySelector("[aria-invalid='true']")) || box || $("#message");
    if (target && target.scrollIntoView) target.scrollIntoView({ block: "center" });
  } finally {
    if (control) control.disabled = false;
  }
}

/** An API message as a sentence: capitalised, ending with a stop. */
function sentence(text) {
  const trimmed = String(text || "").trim();
  if (!trimmed) return trimmed;
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

/** What went wrong, in words a person uses. A refusal for too many attempts says how long
 *  it lasts when the server said ("…; try again in 15 minutes"). */
export function errorText(e) {
  if (!(e instanceof ApiError)) return String(e.message || e);
  switch (e.code) {
    case "permission_denied": return `You are not allowed to do this. ${sentence(e.message)}`;
    case "throttled": return /try again in/.test(e.message) ? sentence(e.message)
      : "Too many attempts. Wait a moment and try again.";
    case "unavailable": return "The server is busy. Try again in a moment.";
    case "not_found": return "This no longer exists, or it is not in your organization.";
    default: return sentence(e.message);
  }
}

/** The field an API error names: an element with `data-field="name"` in the form. */
function fieldFor(form, name) {
  return form.querySelector(`[data-field="${CSS.escape(name)}"]`);
}

export function clearFieldErrors(form) {
  for (const node of form.querySelectorAll(".field-error")) node.remove();
  for (const node of form.querySelectorAll("[aria-invalid]")) {
    node.removeAttribute("aria-invalid");
    // Only the error's own id goes; a help text stays linked.
    const kept = (node.getAttribute("aria-describedby") || "").split(" ")
      .filter((d) => d && !d.endsWith("-error"));
    if (kept.length) node.setAttribute("aria-describedby", kept.join(" "));
    else node.removeAttribute("aria-describedby");
  }
}

/** Puts each field's problems next to it (`aria-invalid`, an alert); says which fields it
 *  marked and the problems of fields the form has no place for. */
export function showFieldErrors(form, error) {
  const errors = (error.body && error.body.errors) || {};
  const result = { marked: false, others: [] };
  for (const [name, problems] of Object.entries(errors)) {
    const field = fieldFor(form, name);
    if (field) {
      result.marked = true;
      markField(field, problems.join("; "));
    } else {
      result.others.push(`${name.replaceAll("_", " ")}: ${problems.join("; ")}.`);
    }
  }
  return result;
}

/** One field's problem, next to it, announced to screen readers. */
export function markField(field, text) {
  const label = field.labels && field.labels[0] ? field.labels[0].textContent.trim() : "This field";
  const id = `${field.id || field.dataset.field}-error`;
  // "Current password is wrong", "Name must be at most 100 characters"; otherwise "Label: ...".
  const said = /^(is|are|must|has|was|differs|cannot|does|should) /.test(text) ? `${label} ${text}` : `${label}: ${text}`;
  const note = el("div", { class: "field-error", role: "alert", id }, said);
  field.setAttribute("aria-invalid", "true");
  const described = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
  field.setAttribute("aria-describedby", [...described.filter((d) => d !== id), id].join(" "));
  field.after(note);
}

/** Every page but /login: no session (in this tab or another open one), no page; signing in
 *  comes back here. Draws the navigation. */
export async function requireSession() {
  if (!(await askOtherTabs())) {
    location.replace(`/login?next=${encodeURIComponent(location.pathname + location.search + location.hash)}`);
    return false;
  }
  drawNav();
  expiringKeysBanner();
  scheduleRefresh();
  return true;
}

/** How long a page trusts the last count of the caller's keys expiring soon. */
const EXPIRING_FRESH_MS = 5 * 60 * 1000;

/** A banner on every page while some of the caller's keys expire within 7 days (counted at
 *  most every five minutes per tab). */
async function expiringKeysBanner() {
  const keysPage = "/settings/developer/api-keys";
  let known;
  try { known = JSON.parse(sessionStorage.getItem("claribi.expiring") || "null"); } catch { known = null; }
  // The keys page counts afresh: a rotation there ends the banner on the next page.
  const fresh = known && Date.now() - known.at < EXPIRING_FRESH_MS && location.pathname !== keysPage;
  let count = fresh ? known.count : null;
  if (count === null) {
    try {
      const page = await api("GET", "/api/auth/api-keys/?status=active&expiring_within=7d&page_size=1");
      count = page.count;
      sessionStorage.setItem("claribi.expiring", JSON.stringify({ at: Date.now(), count }));
    } catch {
      return; // a restricted session, or the server busy: no banner
    }
  }
  const main = $("main");
  if (!count || !main || $("#expiring-keys")) return;
  const what = count === 1 ? "One of your API keys expires" : `${count} of your API keys expire`;
  const banner = el("div", { class: "warning", id: "expiring-keys", role: "status" },
    `${what} within 7 days: integrations using ${count === 1 ? "it" : "them"} will be refused. `,
    location.pathname === keysPage ? `Rotate ${count === 1 ? "it" : "them"} below.`
      : el("a", { href: keysPage }, `Rotate ${count === 1 ? "it" : "them"}`));
  main.prepend(banner);
}

export function drawNav() {
  const nav = $("header.nav");
  if (!nav) return;
  // A keyboard's first stop: past the navigation to the page itself.
  const page = $("main");
  if (page && !$("a.skip-link")) {
    if (!page.id) page.id = "main-content";
    page.setAttribute("tabindex", "-1");
    document.body.prepend(el("a", { class: "skip-link", href: `#${page.id}` }, "Skip to the page"));
  }
  const here = location.pathname.replace(/\/$/, "") || "/";
  const inSettings = SETTINGS.some(({ href }) => href === here) || here.startsWith("/settings");
  const current = (href) => href === here || (href !== "/" && here.startsWith(href + "/"))
    || (href === "/settings" && inSettings);
  const user = Session.user;
  nav.replaceChildren(
    el("a", { class: "brand", href: "/" }, "clariBI"),
    el("nav", { class: "links", "aria-label": "Main" },
      ...MAIN.map(({ href, label }) =>
        el("a", { href, class: current(href) ? "current" : null, "aria-current": current(href) ? "page" : null }, label))),
    el("span", { class: "spacer" }),
    el("span", { class: "muted", id: "whoami" }, user ? `${user.email} (${user.role})` : ""),
    el("button", { class: "secondary", id: "logout", onclick: logout }, "Sign out"),
  );
  const main = $("main");
  if (inSettings && main && !$("nav.subnav")) {
    const items = SETTINGS.filter(({ label, admin }) => label && (!admin || Session.isAdmin()));
    main.before(el("nav", { class: "subnav", "aria-label": "Settings" },
      el("span", { class: "muted" }, "Settings"),
      ...items.map(({ href, label }) =>
        el("a", { href, class: href === here ? "current" : null, "aria-current": href === here ? "page" : null }, label))));
  }
}

/** An administrators' page opened by someone else: a clear note instead of the page. */
export function adminOnly(what) {
  if (Session.isAdmin()) return false;
  const main = $("main");
  const box = $("#message") || el("div", { class: "message", id: "message", role: "status", hidden: true });
  box.hidden = true;
  main.replaceChildren(
    box,
    el("h1", {}, what),
    el("section", { class: "card", id: "not-allowed" },
      el("p", {}, `Only administrators and the owner of the organization can see ${what.toLowerCase()}.`),
      el("p", {}, "Ask one of them if you need something here. ", el("a", { href: "/" }, "Back to the overview"), ".")));
  return true;
}

/** An inline confirmation in `cell`: `question` names what and says what breaks; `yes` is
 *  the button's label and `onYes` the action; `back` restores the cell. */
export function confirmIn(cell, question, yes, attrs, onYes, back) {
  const asked = document.activeElement && cell.contains(document.activeElement)
    ? document.activeElement.textContent : null;
  const onKey = (e) => {
    if (e.key !== "Escape") return;
    e.preventDefault();
    goBack();
  };
  function goBack() {
    cell.removeEventListener("keydown", onKey);
    back();
    // Focus goes back to the button that asked, not to the page.
    const again = asked && [...cell.querySelectorAll("button")].find((b) => b.textContent === asked);
    if (again) again.focus();
  }
  const cancel = el("button", { class: "secondary", onclick: goBack }, "Cancel");
  cell.replaceChildren(
    el("span", { role: "alert" }, question, " "),
    el("button", { class: "danger", ...attrs, onclick: (e) => {
      cell.removeEventListener("keydown", onKey);
      act(e.target, onYes);
    } }, yes),
    " ",
    cancel,
  );
  // Keyboard focus stays in the row, on the safe choice; Esc is the same choice.
  cell.addEventListener("keydown", onKey);
  cancel.focus();
}

/**
 * A modal dialog (the browser's <dialog>) that asks before an action: `title`, `body` nodes
 * (the first paragraph describes it to screen readers), and the confirming button `yes`
 * (`label`, `class`, other attributes) that runs `onYes`. Errors stay in the dialog, next to
 * their fields when it holds a form's fields, and it stays open; while the action runs it
 * cannot be closed. Done, it closes and `after` runs (redrawing a list: its errors are said
 * on the page, not as the action's). Esc or Cancel closes it; the focus then goes to
 * `refocus()`, else the button that opened it, else the page. A destructive action's dialog
 * opens on Cancel, so that Enter does not confirm it.
 */
export function openDialog({ title, body, yes, onYes, after, refocus }) {
  const opener = document.activeElement;
  const n = ++dialogs;
  const heading = el("h2", { id: `dialog-title-${n}` }, title);
  const described = body.find((node) => node.tagName === "P");
  if (described) described.id = `dialog-text-${n}`;
  const box = el("div", { class: "message", hidden: true, role: "alert" });
  const { label, class: kind, ...attrs } = yes;
  const confirm = el("button", { type: "submit", class: kind || null, ...attrs }, label);
  const cancel = el("button", { type: "button", class: "secondary", autofocus: kind === "danger",
    onclick: () => dialog.close() }, "Cancel");
  const dialog = el("dialog", { "aria-labelledby": heading.id, "aria-describedby": described ? described.id : null });
  let busy = false;
  let succeeded = false;
  const focusBack = () => {
    const back = (refocus && refocus()) || (opener && opener.isConnected ? opener : null)
      || $("main[tabindex]") || $("main");
    if (back) back.focus();
  };
  const form = el("form", { novalidate: true }, heading, ...body, box, el("div", { class: "actions" }, confirm, cancel));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (busy) return;
    busy = true;
    cancel.disabled = true;
    let done = false;
    act(confirm, async () => {
      await onYes();
      done = true;
    }, box).finally(async () => {
      busy = false;
      cancel.disabled = false;
      if (!done) return;
      succeeded = true;
      dialog.close();
      // The focus goes back once the page is drawn anew.
      if (after) await act(null, after);
      focusBack();
    });
  });
  dialog.addEventListener("cancel", (event) => { if (busy) event.preventDefault(); });
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (!succeeded) focusBack();
  });
  dialog.append(form);
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}
let dialogs = 0;

/** A user agent as people name it ("Chrome 156 on Linux"); a tool's as it sent it
 *  ("curl/8.5.0"), cut at 60 characters. */
export function agentName(agent) {
  if (!agent) return "";
  const system = [[/Windows/, "Windows"], [/Android/, "Android"], [/iPhone|iPad|iPod/, "iOS"],
    [/CrOS/, "ChromeOS"], [/Mac OS X|Macintosh/, "macOS"], [/Linux/, "Linux"]]
    .find(([pattern]) => pattern.test(agent));
  const browser = [[/Edg(?:e|A|iOS)?\/(\d+)/, "Edge"], [/OPR\/(\d+)/, "Opera"], [/(?:Firefox|FxiOS)\/(\d+)/, "Firefox"],
    [/(?:Chrome|Chromium|CriOS)\/(\d+)/, "Chrome"], [/Version\/(\d+)[\d.]*(?: Mobile\/\S+)? Safari\//, "Safari"]]
    .map(([pattern, name]) => [agent.match(pattern), name]).find(([found]) => found);
  if (browser) return `${browser[1]} ${browser[0][1]}${system ? ` on ${system[1]}` : ""}`;
  return agent.length > 60 ? `${agent.slice(0, 59)}…` : agent;
}

/** On a narrow screen a `table.stack` is cards, each value under its column's name: cells
 *  drawn without a `data-label` take their column header's text. */
function labelCells(table) {
  const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  for (const row of table.tBodies[0] ? table.tBodies[0].rows : []) {
    [...row.cells].forEach((cell, i) => {
      if (!cell.dataset.label && cell.colSpan === 1 && heads[i]) cell.dataset.label = heads[i];
    });
  }
}
new MutationObserver((changes) => {
  const tables = new Set();
  for (const change of changes) {
    const around = change.target.closest ? change.target.closest("table.stack") : null;
    if (around) tables.add(around);
    for (const node of change.addedNodes) {
      if (!node.querySelectorAll) continue;
      if (node.matches("table.stack")) tables.add(node);
      node.querySelectorAll("table.stack").forEach((table) => tables.add(table));
    }
  }
  tables.forEach(labelCells);
}).observe(document.documentElement, { childList: true, subtree: true });

// Esc in a form that has a Cancel button cancels it, as the button would.
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape" || e.defaultPrevented || !(e.target instanceof Element)) return;
  const form = e.target.closest("form");
  const cancel = form && [...form.querySelectorAll("button[id$='-cancel'], #cancel-edit")].find((b) => !b.hidden);
  if (cancel) {
    e.preventDefault();
    cancel.click();
  }
});

export async function logout() {
  const sid = Session.access && claim(Session.access, "sid");
  try {
    if (Session.refresh) {
      const body = { refresh: Session.refresh };
      let r = await send("POST", "/api/auth/logout/", body);
      // An access token that expired while the page slept: renewed once, so that the
      // session really ends on the server.
      if (r.status === 401 && (await refreshAccess()) === "renewed") {
        r = await send("POST", "/api/auth/logout/", { refresh: Session.refresh });
      }
    }
  } catch { /* the server may not answer: this tab forgets the session all the same */ }
  sessionStorage.removeItem(RESUME);
  // The session's other tabs sign out with this one.
  if (tabs && sid) tabs.postMessage({ type: "signed-out", sid });
  Session.clear();
  location.assign("/login");
}

/** Keeps the stored user (role, MFA) current: a role change shows on the next page load. */
export async function refreshUser() {
  const me = await api("GET", "/api/auth/me/");
  Session.save({ user: me });
  const sub = $("nav.subnav");
  if (sub) sub.remove();
  drawNav();
  return me;
}

/** Copies `text`; without clipboard permission, selects `node` for Ctrl+C. The button says
 *  which happened. */
export async function copyText(text, node, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    const range = document.createRange();
    range.selectNodeContents(node);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    button.textContent = "Press Ctrl+C";
  }
}

/** Hands the browser `blob` as a file named `name`. */
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Every page of a list endpoint, for small lists (users for the audit log's names). */
export async function allPages(path) {
  const results = [];
  for (let page = 1; page <= 50; page++) {
    const sep = path.includes("?") ? "&" : "?";
    const answer = await api("GET", `${path}${sep}page=${page}&page_size=100`);
    results.push(...answer.results);
    if (!answer.next) break;
  }
  return results;
}

// Lists kept in the address (`?search=&ordering=&page=` and a page's own filters), so that a
// reload, the back button or a shared link shows the same rows.

/** Rows a list shows at a time. */
export const PAGE_SIZE = 25;
let listRedraw = null;

/** Draws the page's list again when its address changes (a filter, a sort, a page, back). */
export function onListChange(redraw) {
  listRedraw = redraw;
}

window.addEventListener("popstate", () => { if (listRedraw) act(null, listRedraw); });

/** The address's list parameters: `search`, `ordering`, `page` (from 1) and the rest. */
export function listParams() {
  const params = new URLSearchParams(location.search);
  return {
    params,
    search: params.get("search") || "",
    ordering: params.get("ordering") || "",
    page: Math.max(1, Number.parseInt(params.get("page") || "1", 10) || 1),
  };
}

/** Changes the address (`null` or "" drops a parameter) and draws the list again. `replace`:
 *  the address corrects this one (a page past the end, an unknown order) and takes its place
 *  in the history, so that Back does not lead to it again. */
export function setListParams(changes, replace) {
  const next = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === "" || v === false) next.delete(k);
    else next.set(k, String(v));
  }
  const query = next.toString();
  const address = `${location.pathname}${query ? `?${query}` : ""}${location.hash}`;
  if (address !== location.pathname + location.search + location.hash) {
    if (replace) history.replaceState(null, "", address);
    else history.pushState(null, "", address);
  }
  if (listRedraw) act(null, listRedraw);
}

/** A list's answer that the address asked wrongly for: a page past the end (the list shrank)
 *  or a search or order the API refuses. The address is corrected in place; `true` when it
 *  was (the list is drawn again), `false` for any other error. */
export function correctListParams(error, page) {
  const drop = {};
  if (error.status === 404 && page > 1) drop.page = null;
  if (error.status === 400) {
    // The parameters the answer names, else the list's own ones.
    const named = Object.keys((error.body && error.body.errors) || {});
    for (const name of named.length ? named : ["search", "ordering"]) drop[name] = null;
    drop.page = null;
  }
  // A correction that changes nothing would ask the same again: the error is said instead.
  const next = new URLSearchParams(location.search);
  if (!Object.keys(drop).some((name) => next.has(name))) return false;
  setListParams(drop, true);
  return true;
}

/** A page of a list for a load that a newer one may overtake (`isCurrent`): the answer, or
 *  null when it is not to be drawn (a newer load began, or the address was corrected and the
 *  list is drawn again). */
export async function fetchListPage(path, query, page, isCurrent) {
  try {
    const answer = await api("GET", `${path}?${query}`);
    return isCurrent() ? answer : null;
  } catch (e) {
    if (!isCurrent() || correctListParams(e, page)) return null;
    throw e;
  }
}

/** "31 users matching "x"; page 1 of 2": `nouns` is [one, many]. */
export function countText(count, nouns, search, page) {
  const pages = Math.max(1, Math.ceil(count / PAGE_SIZE));
  return `${count} ${count === 1 ? nouns[0] : nouns[1]}`
    + (search ? ` matching "${search}"` : "") + (pages > 1 ? `; page ${page} of ${pages}` : "");
}

/** Term and value pairs as a `dl.details`; values may be nodes. */
export function detailsList(pairs) {
  return el("dl", { class: "details" }, ...pairs.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
}

/** A row's drawer: a hidden row under it (`id`, spanning `columns`) with `content`, and the
 *  button that opens and closes it (`label`, and `hint` said to screen readers). */
export function drawer(id, columns, content, label, hint, attrs) {
  const row = el("tr", { class: "drawer", hidden: true, id, ...attrs }, el("td", { colspan: columns }, content));
  const toggle = el("button", { type: "button", class: "link", "aria-expanded": "false", "aria-controls": id },
    label, hint ? el("span", { class: "visually-hidden" }, ` ${hint}`) : null);
  toggle.addEventListener("click", () => {
    row.hidden = !row.hidden;
    toggle.setAttribute("aria-expanded", String(!row.hidden));
  });
  return { row, toggle };
}

/** A column header; for a sortable field, a button that sorts by it, then the other way. */
export function sortHeader(label, field, ordering, attrs) {
  if (!field) return el("th", { scope: "col", ...attrs }, label);
  const sorted = ordering === field ? "ascending" : ordering === `-${field}` ? "descending" : "none";
  const next = sorted === "ascending" ? `-${field}` : sorted === "descending" ? null : field;
  const arrow = sorted === "ascending" ? " ▲" : sorted === "descending" ? " ▼" : "";
  return el("th", { scope: "col", "aria-sort": sorted, ...attrs },
    el("button", { type: "button", class: "sort", "data-sort": field,
      onclick: () => setListParams({ ordering: next, page: null }) }, label, arrow));
}

/** Previous / "Page n of m" / Next, or nothing for a single page. */
export function pager(page, count) {
  const pages = Math.max(1, Math.ceil(count / PAGE_SIZE));
  if (pages <= 1) return null;
  return el("nav", { class: "pager", "aria-label": "Pages" },
    el("button", { type: "button", class: "secondary", id: "previous-page", disabled: page <= 1,
      onclick: () => { const now = listParams().page; setListParams({ page: now - 1 > 1 ? now - 1 : null }); } }, "← Previous"),
    el("span", { class: "muted" }, `Page ${page} of ${pages}`),
    el("button", { type: "button", class: "secondary", id: "next-page", disabled: page >= pages,
      onclick: () => setListParams({ page: listParams().page + 1 }) }, "Next →"));
}

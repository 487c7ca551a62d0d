// /settings/developer/api-keys: the caller's keys (administrators: the organization's);
// generate (shown once), edit, rotate with an overlap, revoke; scope usage and advice; canary
// keys and leak reports for administrators.
import {
  $,
  act,
  agentName,
  api,
  clearFieldErrors,
  copyText,
  countText,
  detailsList,
  drawer,
  el,
  fetchListPage,
  listParams,
  markField,
  onListChange,
  openDialog,
  PAGE_SIZE,
  pager,
  refreshUser,
  requireSession,
  say,
  Session,
  setListParams,
  sortHeader,
  when,
} from "./common.js";

// The scopes of the contract's section 5, in its order, with what each allows. The server
// refuses a scope the caller's role can never use (403 scope_exceeds_role); a unit test keeps
// this list and auth::permission::SCOPES equal.
const SCOPES = [
  "reports:read", "reports:generate", "reports:delete", "reports:share",
  "dashboards:read", "dashboards:create", "dashboards:update", "dashboards:delete",
  "dashboards:refresh", "dashboards:share", "data_sources:read", "usage:read", "goals:read",
];
const SCOPE_HELP = {
  "reports:read": "list and read reports",
  "reports:generate": "generate reports (spends credits)",
  "reports:delete": "delete reports",
  "reports:share": "create and revoke public links to reports",
  "dashboards:read": "list and read dashboards",
  "dashboards:create": "create dashboards",
  "dashboards:update": "change dashboards",
  "dashboards:delete": "delete dashboards",
  "dashboards:refresh": "refresh dashboards (spends credits)",
  "dashboards:share": "create and revoke public links to dashboards",
  "data_sources:read": "list and read data sources",
  "usage:read": "read credit usage",
  "goals:read": "read goals and their progress",
};
// The overlaps of the default `auth.rotation_overlaps`.
const OVERLAPS = [["0s", "stops working at once"], ["1h", "keeps working for 1 hour"],
  ["24h", "keeps working for 24 hours"], ["7d", "keeps working for 7 days"]];
const DAY = 86400 * 1000;
/** A scoped key this old whose scope was never used gets the advice to narrow it. */
const ADVICE_AGE = 30 * DAY;

const RESOURCES = { reports: "Reports", dashboards: "Dashboards", data_sources: "Data sources", usage: "Usage", goals: "Goals" };

/** The scopes grouped by resource, each with what it allows. Scopes outside `allowed` (what
 *  the caller's role may do) are shown but cannot be chosen. */
function drawScopes(allowed) {
  const groups = Object.entries(RESOURCES).map(([resource, title]) => el("fieldset", { class: "scope-group" },
    el("legend", {}, title),
    ...SCOPES.filter((s) => s.startsWith(`${resource}:`)).map((scope) => {
      const usable = allowed.includes(scope);
      return el("label", { class: "scope-choice", title: usable ? null : "Not available to your role" },
        el("input", { type: "checkbox", value: scope, class: "scope", disabled: !usable, "data-usable": String(usable) }),
        el("code", { class: usable ? null : "muted" }, scope),
        el("span", { class: "muted" }, ` ${SCOPE_HELP[scope]}${usable ? "" : " (not for your role)"}`));
    })));
  $("#scopes").replaceChildren(...groups);
}

function showKey(key) {
  $("#new-key-value").textContent = key;
  $("#new-key").hidden = false;
  $("#new-key").scrollIntoView();
}

function copyKey() {
  return copyText($("#new-key-value").textContent, $("#new-key-value"), $("#copy"));
}

function dismissKey() {
  $("#new-key-value").textContent = "";
  $("#new-key").hidden = true;
  $("#copy").textContent = "Copy";
}

function statusBadge(status) {
  return el("span", { class: `badge ${status}`, "data-status": status }, status);
}

/** One address or range per line (commas and spaces also separate); `null` for none. */
function parseRanges(text) {
  const ranges = text.split(/[\s,]+/).filter(Boolean);
  return ranges.length ? ranges : null;
}

function age(key) {
  return Date.now() - new Date(key.created_at).getTime();
}

/** Scopes of a scoped key older than 30 days that it never used. */
function unusedScopes(key) {
  if (!key.scopes || age(key) < ADVICE_AGE) return [];
  return key.scopes.filter((s) => !(key.scope_usage[s] && key.scope_usage[s].count > 0));
}

function scopesCell(key) {
  if (!key.scopes) return el("td", { "data-label": "Scopes" }, el("span", { class: "muted" }, "full access"));
  const unused = unusedScopes(key);
  const items = key.scopes.map((scope) => {
    const use = key.scope_usage[scope] || { count: 0 };
    const never = unused.includes(scope);
    return el("div", { class: never ? "unused-scope" : null, "data-scope": scope },
      el("code", { title: SCOPE_HELP[scope] || "" }, scope),
      " ",
      el("span", { class: "muted" }, never ? "never used" : `${use.count} use${use.count === 1 ? "" : "s"}`));
  });
  const advice = unused.length && unused.length < key.scopes.length && key.status === "active"
    ? el("button", { class: "link", "data-narrow": key.id, onclick: () => narrower(key, unused) },
      "Create a narrower key")
    : null;
  return el("td", { "data-label": "Scopes" }, items, advice);
}

/** A key as people tell keys apart: its name and its prefix. */
function keyLabel(name, prefix) {
  return `"${name}" (${prefix}…)`;
}

/** The keys of the page by id, to name a successor or predecessor by name and prefix. */
let byId = new Map();

function nameCell(key) {
  const notes = [];
  if (key.canary) notes.push(el("span", { class: "badge canary" }, "canary"));
  if (key.allowed_ips) notes.push(el("span", { class: "badge", title: key.allowed_ips.join(", ") }, "allowlist"));
  if (key.replaced_by) {
    const overlap = key.status === "active" && key.expires_at;
    const successor = byId.get(key.replaced_by);
    notes.push(el("div", { class: "muted", "data-replaced-by": key.replaced_by },
      successor ? `Replaced by ${keyLabel(successor.name, successor.prefix)}` : "Replaced by a newer key",
      overlap ? `; works until ${when(key.expires_at)}` : ""));
  }
  const predecessor = [...byId.values()].find((k) => k.replaced_by === key.id);
  if (predecessor) {
    notes.push(el("div", { class: "muted", "data-replaces": predecessor.id },
      el("span", { class: "badge current" }, "successor"), ` of ${keyLabel(predecessor.name, predecessor.prefix)}`));
  }
  return el("td", { "data-label": "Name" }, el("span", { "data-name": "" }, key.name), " ",
    el("code", { class: "muted" }, `${key.prefix}…`), notes);
}

function lastUsedCell(key) {
  if (!key.last_used_at) return el("td", { "data-label": "Last used" }, "—");
  return el("td", { "data-label": "Last used" }, when(key.last_used_at),
    key.last_used_ip ? el("div", { class: "muted", "data-last-ip": "" }, `from ${key.last_used_ip}`) : null,
    key.last_used_user_agent ? el("div", { class: "muted", "data-last-agent": "", title: key.last_used_user_agent },
      agentName(key.last_used_user_agent)) : null);
}

/** What the row leaves out, for its drawer. */
function facts(key) {
  return detailsList([
    ["Description", key.description || "—"],
    ["Key", el("code", {}, `${key.prefix}…`)],
    ["Created", when(key.created_at)],
    ["Allowed from", el("span", { "data-allowed": "" }, key.allowed_ips ? key.allowed_ips.join(", ") : "any address")],
    ["Last user agent", key.last_used_user_agent || "—"],
  ]);
}

function actions(key, details) {
  const cell = el("td", { class: "row-actions", "data-label": "Actions" });
  const again = (attr) => () => document.querySelector(`button[${attr}='${key.id}']`);
  details.dataset.details = key.id;
  cell.append(details);
  if (key.status !== "active") return cell;
  const revoke = () => openDialog({
    title: `Revoke ${keyLabel(key.name, key.prefix)}?`,
    body: [el("p", {}, "Integrations using it stop at once. This cannot be undone.")],
    yes: { label: "Revoke", class: "danger", "data-confirm-revoke": key.id },
    onYes: async () => {
      await api("DELETE", `/api/auth/api-keys/${key.id}/`);
      say(`Key ${keyLabel(key.name, key.prefix)} revoked.`, "ok");
    },
    after: load,
    // The row stays when the list shows revoked keys; else the message says what happened.
    refocus: () => again("data-details")() || $("#message"),
  });
  const rotate = () => {
    const overlap = el("select", { id: "rotate-overlap", "data-overlap": key.id },
      ...OVERLAPS.map(([value, label]) => el("option", { value }, label)));
    openDialog({
      title: `Rotate ${keyLabel(key.name, key.prefix)}?`,
      body: [el("p", {}, "A new key is made with the same scopes and allowlist, and shown once."),
        el("label", { for: "rotate-overlap" }, "The old key"), overlap],
      yes: { label: "Rotate", "data-confirm-rotate": key.id },
      onYes: async () => {
        const fresh = await api("POST", `/api/auth/api-keys/${key.id}/rotate/`, { overlap: overlap.value });
        showKey(fresh.key);
        say(overlap.value === "0s"
          ? `Key ${keyLabel(key.name, key.prefix)} rotated: the old key no longer works.`
          : `Key ${keyLabel(key.name, key.prefix)} rotated: the old key works until the overlap ends; its last caller shows in the list.`, "ok");
      },
      after: load,
      // The new key is shown once: the focus goes to its Copy button.
      refocus: () => $("#copy"),
    });
  };
  const edit = () => {
    const name = el("input", { type: "text", id: "edit-name", value: key.name, maxlength: 100, "data-field": "name", "data-edit-name": key.id });
    const ranges = el("textarea", { id: "edit-ips", rows: 3, "data-field": "allowed_ips", "data-edit-ips": key.id,
      placeholder: "any address" });
    ranges.value = (key.allowed_ips || []).join("\n");
    openDialog({
      title: `Edit ${keyLabel(key.name, key.prefix)}`,
      body: [el("label", { for: "edit-name" }, "Name"), name,
        el("label", { for: "edit-ips" }, "Allowed addresses"),
        el("p", { class: "muted" }, "One address or range per line (10.0.0.0/8); empty for any address."), ranges],
      yes: { label: "Save", "data-save": key.id },
      onYes: async () => {
        await api("PATCH", `/api/auth/api-keys/${key.id}/`,
          { name: name.value.trim(), allowed_ips: parseRanges(ranges.value) });
        say(`Key ${keyLabel(name.value.trim(), key.prefix)} saved.`, "ok");
      },
      after: load,
      refocus: again("data-edit"),
    });
  };
  // A key is rotated once, by its creator; a canary key is never used, so never rotated.
  const own = !key.owner_email || (Session.user && key.owner_email === Session.user.email);
  const rotatable = own && !key.replaced_by && !key.canary;
  cell.append(" ",
    el("button", { type: "button", class: "secondary", "data-edit": key.id, onclick: edit }, "Edit"), " ",
    ...(rotatable ? [el("button", { type: "button", class: "secondary", "data-rotate": key.id, onclick: rotate }, "Rotate"), " "] : []),
    el("button", { type: "button", class: "danger", "data-revoke": key.id, onclick: revoke }, "Revoke"));
  return cell;
}

/** Active, not replaced already (an overlap's end is planned), and ending within 14 days. */
function expiresSoon(key) {
  if (key.status !== "active" || !key.expires_at || key.replaced_by) return false;
  return new Date(key.expires_at).getTime() - Date.now() < 14 * DAY;
}

/** A key's row and its drawer. */
function row(key, all) {
  const { row: drawerRow, toggle } = drawer(`details-${key.id}`, all ? 8 : 7, facts(key),
    "Details", `of ${keyLabel(key.name, key.prefix)}`, { "data-details-of": key.id });
  const cells = [
    nameCell(key),
    all ? el("td", { "data-owner": "", "data-label": "Owner" }, key.owner_email || "—") : null,
    scopesCell(key),
    el("td", { "data-label": "Expires" }, key.expires_at ? when(key.expires_at) : "never"),
    lastUsedCell(key),
    el("td", { "data-label": "Uses" }, String(key.usage_count)),
    el("td", { "data-label": "Status" }, statusBadge(key.status),
      key.revoked_at ? el("div", { class: "muted small" }, `revoked ${when(key.revoked_at)}`) : null),
    actions(key, toggle),
  ].filter(Boolean);
  return [el("tr", { "data-key-id": key.id, class: expiresSoon(key) ? "expiring" : null }, ...cells), drawerRow];
}

let loads = 0;

const STATUSES = ["active", "expired", "revoked"];
/** The columns the API sorts keys by. */
const SORTABLE = ["name", "expires_at", "last_used_at", "usage_count"];

/** The table's header: the sortable columns are buttons (the API's `ordering`). */
function drawHeader(everyone, ordering) {
  $("#keys thead").replaceChildren(el("tr", {},
    sortHeader("Name", "name", ordering),
    sortHeader("Owner", null, ordering, { class: "owner-column", hidden: !everyone }),
    sortHeader("Scopes", null, ordering),
    sortHeader("Expires", "expires_at", ordering),
    sortHeader("Last used", "last_used_at", ordering),
    sortHeader("Uses", "usage_count", ordering),
    sortHeader("Status", null, ordering),
    el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, "Actions"))));
}

/** The keys as the address says: whose, which status, searched, sorted, which page. */
async function load() {
  // Answers may arrive out of order: only the latest request draws.
  const mine = ++loads;
  const { params, search, ordering, page: pageNo } = listParams();
  if (ordering && !SORTABLE.includes(ordering.replace(/^-/, ""))) {
    return setListParams({ ordering: null }, true);
  }
  const everyone = params.get("all") === "true" && Session.isAdmin();
  const wanted = STATUSES.includes(params.get("status")) ? params.get("status") : "";
  $("#all-keys").checked = everyone;
  $("#status-filter").value = wanted;
  $("#key-search").value = search;
  const query = new URLSearchParams({ page: String(pageNo), page_size: String(PAGE_SIZE) });
  if (everyone) query.set("all", "true");
  if (wanted) query.set("status", wanted);
  if (search) query.set("search", search);
  if (ordering) query.set("ordering", ordering);
  const page = await fetchListPage("/api/auth/api-keys/", query, pageNo, () => mine === loads);
  if (!page) return;
  drawHeader(everyone, ordering);
  $("#keys-count").textContent = countText(page.count, ["key", "keys"], search, pageNo);
  $("#keys-pager").replaceChildren(...[pager(pageNo, page.count)].filter(Boolean));
  // Keys about to expire first (soonest first), then the rest as listed (newest first),
  // unless a column orders them.
  const soon = page.results.filter(expiresSoon)
    .sort((a, b) => new Date(a.expires_at) - new Date(b.expires_at));
  const rest = ordering ? page.results : page.results.filter((k) => !expiresSoon(k));
  $("#expiring").hidden = !soon.length;
  $("#expiring-list").replaceChildren(...soon.map((k) =>
    el("li", {}, `"${k.name}" (${k.prefix}…) expires ${when(k.expires_at)}. Rotate it before then.`)));
  byId = new Map(page.results.map((k) => [k.id, k]));
  const rows = (ordering ? rest : [...soon, ...rest]).flatMap((k) => row(k, everyone));
  $("#keys tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: everyone ? 8 : 7, class: "empty" },
      search ? `No keys match "${search}".` : wanted ? `No ${wanted} keys.` : "No keys yet."))]));
}

/** Opens the form for a replacement of `key` without the scopes it never used. */
function narrower(key, unused) {
  $("#create").reset();
  $("#full-access").checked = false;
  toggleFullAccess();
  $("#name").value = `${key.name} (narrower)`.slice(0, 100);
  $("#description").value = key.description || "";
  $("#allowed-ips").value = (key.allowed_ips || []).join("\n");
  for (const box of document.querySelectorAll("input.scope")) {
    box.checked = key.scopes.includes(box.value) && !unused.includes(box.value);
  }
  say("", "ok", $("#create-message"));
  $("#create").hidden = false;
  $("#create").scrollIntoView();
  $("#create-submit").focus();
}

async function create(event) {
  event.preventDefault();
  const box = $("#create-message");
  const body = { name: $("#name").value.trim(), description: $("#description").value.trim() };
  const expiry = $("#expiry").value;
  body.expires_in_days = expiry === "never" ? null : Number(expiry);
  body.allowed_ips = parseRanges($("#allowed-ips").value);
  if (Session.isAdmin() && $("#canary").checked) body.canary = true;
  clearFieldErrors($("#create"));
  const missing = [];
  if (!body.name) missing.push(["#name", "is required: give the key a name"]);
  if (!$("#full-access").checked) {
    body.scopes = [...document.querySelectorAll("input.scope:checked")].map((c) => c.value);
    if (!body.scopes.length) missing.push(["#scopes", "Choose at least one scope, or full access"]);
  }
  if (missing.length) {
    for (const [selector, text] of missing) {
      const field = $(selector);
      if (selector === "#scopes") {
        field.setAttribute("aria-invalid", "true");
        field.after(el("div", { class: "field-error", role: "alert", id: "scopes-error" }, text));
      } else {
        markField(field, text);
      }
    }
    say(missing.map(([, t]) => t).length > 1 ? "Please correct the fields marked below." : "Please correct the field marked below.", "error", box);
    $(missing[0][0]).scrollIntoView({ block: "center" });
    return;
  }
  await act($("#create-submit"), async () => {
    const key = await api("POST", "/api/auth/api-keys/", body);
    $("#create").reset();
    $("#create").hidden = true;
    showKey(key.key);
    await load();
  }, box);
}

async function reportLeak(event) {
  event.preventDefault();
  const box = $("#leak-message");
  const text = $("#leak-text").value;
  if (!text.trim()) return say("Paste the text to search.", "error", box);
  say("", "ok", box);
  openDialog({
    title: "Revoke every key of this organization found in the text?",
    body: [el("p", {}, "Each well-formed clariBI key in it is looked up; this organization's are revoked at once, "
      + "and the integrations using them stop. Keys of other organizations are only reported.")],
    yes: { label: "Find and revoke", class: "danger", id: "leak-confirm" },
    onYes: () => findLeaks(text),
  });
}

async function findLeaks(text) {
  const box = $("#leak-message");
  await act($("#leak-submit"), async () => {
    const answer = await api("POST", "/api/auth/api-keys/leak-report/", { text });
    const rows = answer.found.map((f) => el("tr", {},
      el("td", {}, el("code", {}, `${f.prefix}…`)),
      el("td", {}, f.id ? (byId.has(f.id) ? keyLabel(byId.get(f.id).name, byId.get(f.id).prefix) : "one of this organization's keys")
        : el("span", { class: "muted" }, "not one of this organization's keys")),
      el("td", {}, f.status_before || "—"),
      el("td", {}, f.revoked ? "yes" : "no")));
    $("#leak-results tbody").replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: 4, class: "empty" }, "No clariBI key in this text."))]));
    $("#leak-results").hidden = false;
    const revoked = answer.found.filter((f) => f.revoked).length;
    say(`${answer.found.length} key(s) found; ${revoked} revoked.`, "ok", box);
    await load();
  }, box);
}

function toggleFullAccess() {
  for (const box of document.querySelectorAll("input.scope")) {
    box.disabled = $("#full-access").checked || box.dataset.usable !== "true";
  }
}

function showAdminParts() {
  const admin = Session.isAdmin();
  $("#all-keys-label").hidden = !admin;
  $("#canary-field").hidden = !admin;
  $("#leak").hidden = !admin;
}

if (await requireSession()) {
  drawScopes([]);
  $("#generate").addEventListener("click", () => { $("#create").hidden = false; $("#name").focus(); });
  $("#create-cancel").addEventListener("click", () => { $("#create").reset(); toggleFullAccess(); $("#create").hidden = true; });
  $("#create").addEventListener("submit", create);
  $("#full-access").addEventListener("change", toggleFullAccess);
  // A stale "choose a scope" goes once one is chosen.
  $("#scopes").addEventListener("change", () => {
    say("", "ok", $("#create-message"));
    const note = $("#scopes-error");
    if (note) note.remove();
    $("#scopes").removeAttribute("aria-invalid");
  });
  $("#copy").addEventListener("click", copyKey);
  $("#dismiss").addEventListener("click", dismissKey);
  onListChange(load);
  $("#all-keys").addEventListener("change", () =>
    setListParams({ all: $("#all-keys").checked ? "true" : null, page: null }));
  $("#status-filter").addEventListener("change", () =>
    setListParams({ status: $("#status-filter").value || null, page: null }));
  $("#key-search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setListParams({ search: $("#key-search").value.trim(), page: null });
  });
  $("#leak").addEventListener("submit", reportLeak);
  showAdminParts();
  act(null, async () => {
    await refreshUser();
    showAdminParts();
    drawScopes((await api("GET", "/api/v1/auth/verify/")).permissions);
    await load();
  });
}

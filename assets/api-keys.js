// /settings/developer/api-keys: the caller's keys (administrators: the organization's);
// generate (shown once), edit, rotate with an overlap, revoke; scope usage and advice; canary
// keys and leak reports for administrators.
import {
  $,
  act,
  api,
  clearFieldErrors,
  copyText,
  correctListParams,
  el,
  listParams,
  markField,
  onListChange,
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
  return el("span", { class: `badge ${status}` }, status);
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
  if (!key.scopes) return el("td", {}, el("span", { class: "muted" }, "full access"));
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
  return el("td", {}, items, advice);
}

function nameCell(key) {
  const notes = [];
  if (key.canary) notes.push(el("span", { class: "badge canary" }, "canary"));
  if (key.replaced_by) {
    const overlap = key.status === "active" && key.expires_at;
    notes.push(el("div", { class: "muted", "data-replaced-by": key.replaced_by },
      `Replaced by key #${key.replaced_by}`,
      overlap ? `; works until ${when(key.expires_at)}` : ""));
  }
  return el("td", {}, key.name, key.description ? el("div", { class: "muted" }, key.description) : null, notes);
}

function lastUsedCell(key) {
  if (!key.last_used_at) return el("td", {}, "—");
  return el("td", {}, when(key.last_used_at),
    key.last_used_ip ? el("div", { class: "muted", "data-last-ip": "" }, `from ${key.last_used_ip}`) : null,
    key.last_used_user_agent ? el("div", { class: "muted small", "data-last-agent": "" }, key.last_used_user_agent) : null);
}

function actions(key) {
  const cell = el("td", { class: "row-actions" });
  if (key.status !== "active") return cell;
  const back = () => cell.replaceChildren(...buttons());
  const confirmRevoke = () => cell.replaceChildren(
    el("span", {}, `Revoke "${key.name}"? Integrations using it stop at once. `),
    el("button", { class: "danger", "data-confirm-revoke": key.id, onclick: (e) => act(e.target, async () => {
      await api("DELETE", `/api/auth/api-keys/${key.id}/`);
      say(`Key "${key.name}" revoked.`, "ok");
      await load();
    }) }, "Revoke"),
    " ",
    el("button", { class: "secondary", onclick: back }, "Cancel"),
  );
  const confirmRotate = () => {
    const overlap = el("select", { "data-overlap": key.id, "aria-label": "The old key" },
      ...OVERLAPS.map(([value, label]) => el("option", { value }, label)));
    cell.replaceChildren(
      el("span", {}, `Rotate "${key.name}"? A new key is made; the old key `),
      overlap,
      " ",
      el("button", { "data-confirm-rotate": key.id, onclick: (e) => act(e.target, async () => {
        const fresh = await api("POST", `/api/auth/api-keys/${key.id}/rotate/`, { overlap: overlap.value });
        showKey(fresh.key);
        say(overlap.value === "0s"
          ? `Key "${key.name}" rotated: the old key no longer works.`
          : `Key "${key.name}" rotated: the old key works until the overlap ends; its last caller shows in the list.`, "ok");
        await load();
      }) }, "Rotate"),
      " ",
      el("button", { class: "secondary", onclick: back }, "Cancel"),
    );
  };
  const edit = () => {
    const name = el("input", { type: "text", value: key.name, maxlength: 100, "aria-label": "Name", "data-edit-name": key.id });
    const ranges = el("textarea", { rows: 2, "aria-label": "Allowed addresses", "data-edit-ips": key.id,
      placeholder: "any address" });
    ranges.value = (key.allowed_ips || []).join("\n");
    const box = el("div", { class: "message error", hidden: true, role: "alert" });
    cell.replaceChildren(
      el("label", {}, "Name"), name,
      el("label", {}, "Allowed addresses"), ranges,
      box,
      el("div", { class: "actions" },
        el("button", { "data-save": key.id, onclick: (e) => act(e.target, async () => {
          await api("PATCH", `/api/auth/api-keys/${key.id}/`,
            { name: name.value.trim(), allowed_ips: parseRanges(ranges.value) });
          say(`Key "${name.value.trim()}" saved.`, "ok");
          await load();
        }, box) }, "Save"),
        el("button", { class: "secondary", onclick: back }, "Cancel")),
    );
  };
  // A key is rotated once, by its creator; a canary key is never used, so never rotated.
  const own = !key.owner_email || (Session.user && key.owner_email === Session.user.email);
  const rotatable = own && !key.replaced_by && !key.canary;
  const buttons = () => [
    el("button", { class: "secondary", "data-edit": key.id, onclick: edit }, "Edit"),
    " ",
    ...(rotatable ? [el("button", { class: "secondary", "data-rotate": key.id, onclick: confirmRotate }, "Rotate"), " "] : []),
    el("button", { class: "danger", "data-revoke": key.id, onclick: confirmRevoke }, "Revoke"),
  ];
  cell.replaceChildren(...buttons());
  return cell;
}

/** Active, not replaced already (an overlap's end is planned), and ending within 14 days. */
function expiresSoon(key) {
  if (key.status !== "active" || !key.expires_at || key.replaced_by) return false;
  return new Date(key.expires_at).getTime() - Date.now() < 14 * DAY;
}

function row(key, all) {
  return el("tr", { "data-key-id": key.id, class: expiresSoon(key) ? "expiring" : null },
    nameCell(key),
    all ? el("td", { "data-owner": "" }, key.owner_email || "—") : null,
    el("td", {}, el("code", {}, `${key.prefix}…`)),
    scopesCell(key),
    el("td", {}, when(key.created_at)),
    el("td", {}, key.expires_at ? when(key.expires_at) : "never"),
    lastUsedCell(key),
    el("td", { "data-allowed": "" }, key.allowed_ips ? key.allowed_ips.join(", ") : el("span", { class: "muted" }, "any address")),
    el("td", {}, String(key.usage_count)),
    el("td", {}, statusBadge(key.status),
      key.revoked_at ? el("div", { class: "muted small" }, `revoked ${when(key.revoked_at)}`) : null),
    actions(key),
  );
}

let loads = 0;

const STATUSES = ["active", "expired", "revoked"];
/** The columns the API sorts keys by. */
const SORTABLE = ["name", "prefix", "created_at", "expires_at", "last_used_at", "usage_count"];

/** The table's header: the sortable columns are buttons (the API's `ordering`). */
function drawHeader(everyone, ordering) {
  $("#keys thead").replaceChildren(el("tr", {},
    sortHeader("Name", "name", ordering),
    sortHeader("Owner", null, ordering, { class: "owner-column", hidden: !everyone }),
    sortHeader("Key", "prefix", ordering),
    sortHeader("Scopes", null, ordering),
    sortHeader("Created", "created_at", ordering),
    sortHeader("Expires", "expires_at", ordering),
    sortHeader("Last used", "last_used_at", ordering),
    sortHeader("Allowed from", null, ordering),
    sortHeader("Uses", "usage_count", ordering),
    sortHeader("Status", null, ordering),
    el("th", {})));
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
  let page;
  try {
    page = await api("GET", `/api/auth/api-keys/?${query}`);
  } catch (e) {
    if (mine !== loads || correctListParams(e, pageNo)) return;
    throw e;
  }
  if (mine !== loads) return;
  drawHeader(everyone, ordering);
  const pages = Math.max(1, Math.ceil(page.count / PAGE_SIZE));
  $("#keys-count").textContent = `${page.count} key${page.count === 1 ? "" : "s"}`
    + (search ? ` matching "${search}"` : "") + (pages > 1 ? `; page ${pageNo} of ${pages}` : "");
  $("#keys-pager").replaceChildren(...[pager(pageNo, page.count)].filter(Boolean));
  // Keys about to expire first (soonest first), then the rest as listed (newest first),
  // unless a column orders them.
  const soon = page.results.filter(expiresSoon)
    .sort((a, b) => new Date(a.expires_at) - new Date(b.expires_at));
  const rest = ordering ? page.results : page.results.filter((k) => !expiresSoon(k));
  $("#expiring").hidden = !soon.length;
  $("#expiring-list").replaceChildren(...soon.map((k) =>
    el("li", {}, `"${k.name}" (${k.prefix}…) expires ${when(k.expires_at)}. Rotate it before then.`)));
  const rows = (ordering ? rest : [...soon, ...rest]).map((k) => row(k, everyone));
  $("#keys tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 11, class: "empty" },
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
  await act($("#leak-submit"), async () => {
    const answer = await api("POST", "/api/auth/api-keys/leak-report/", { text });
    const rows = answer.found.map((f) => el("tr", {},
      el("td", {}, el("code", {}, `${f.prefix}…`)),
      el("td", {}, f.id ? `key #${f.id} of this organization` : el("span", { class: "muted" }, "not one of this organization's keys")),
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

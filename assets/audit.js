// /admin/audit (administrators and the owner): the organization's audit log, filtered by
// action, user and days, paged, exported (with the same filters) as CSV or JSON.
import {
  $,
  act,
  adminOnly,
  agentName,
  allPages,
  api,
  apiRaw,
  correctListParams,
  download,
  el,
  listParams,
  onListChange,
  PAGE_SIZE,
  pager,
  refreshUser,
  requireSession,
  setListParams,
  sortHeader,
  when,
} from "./common.js";

// Every audit action the server writes; a unit test keeps this list and
// store::audit::ACTIONS equal.
const ACTIONS = [
  "login.succeeded", "login.failed", "login.throttled", "mfa.enabled", "mfa.disabled", "mfa.reset",
  "mfa.recovery_code_used", "mfa.recovery_codes_regenerated", "mfa.webauthn_added", "mfa.webauthn_removed",
  "mfa.webauthn_clone_suspected", "token.reuse_detected", "session.revoked", "password.changed",
  "api_key.created", "api_key.rotated", "api_key.revoked", "api_key.first_used", "api_key.updated",
  "api_key.used_after_rotation", "api_key.ip_denied", "api_key.canary_used", "api_key.leaked",
  "user.created", "user.role_changed", "user.deactivated", "user.activated", "user.unlocked", "user.password_set",
  "public_link.created", "public_link.revoked", "organization.renamed", "ownership.transferred",
  "report.deleted", "dashboard.deleted", "data_source.deleted", "backup.restored",
  "sso_provider.created", "sso_provider.updated", "sso_provider.deleted", "directory.synced",
  "service_account.created", "service_account.updated", "service_account.deleted", "policy.changed",
];

/** The columns the API orders the log by. */
const SORTABLE = ["at", "action"];

/** The address's filters, search, order and page as the API's query. Days in the address are
 *  local days (`2026-12-01`), sent as times with their offset; `forExport` leaves out what an
 *  export does not take (page, order, search). */
function query(forExport) {
  const { params, search, ordering, page } = listParams();
  const q = new URLSearchParams();
  for (const name of ["action", "user_id"]) {
    if (params.get(name)) q.set(name, params.get(name));
  }
  const day = (name, plusDays) => {
    const text = params.get(name) || "";
    if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return;
    const [y, m, d] = text.split("-").map(Number);
    q.set(name, new Date(y, m - 1, d + plusDays).toISOString());
  };
  day("since", 0);
  day("until", 1);
  if (forExport) return q;
  if (search) q.set("search", search);
  if (ordering) q.set("ordering", ordering);
  q.set("page", String(page));
  q.set("page_size", String(PAGE_SIZE));
  return q;
}

/** The form shows what the address says (after a reload, Back or a shared address). */
function showFilters() {
  const { params, search } = listParams();
  $("#action").value = params.get("action") || "";
  $("#user").value = params.get("user_id") || "";
  $("#since").value = params.get("since") || "";
  $("#until").value = params.get("until") || "";
  $("#audit-search").value = search;
}

function details(e) {
  const entries = Object.entries(e.details || {});
  if (!entries.length) return "";
  return el("dl", { class: "details" }, ...entries.flatMap(([k, v]) => [
    el("dt", {}, k.replaceAll("_", " ")),
    el("dd", {}, v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v)),
  ]));
}

/** An entry's row, compact (the user agent named, not spelled out), and its drawer: the full
 *  user agent and the entry's details. */
function entryRows(e) {
  const more = [
    e.user_agent ? ["User agent", e.user_agent] : null,
  ].filter(Boolean);
  const detailed = details(e);
  const hasMore = more.length || detailed;
  const drawer = el("tr", { class: "drawer", hidden: true, id: `entry-${e.id}` },
    el("td", { colspan: 8 },
      more.length ? el("dl", { class: "details" }, ...more.flatMap(([t, v]) => [el("dt", {}, t), el("dd", {}, v)])) : null,
      detailed));
  const toggle = hasMore ? el("button", { type: "button", class: "link", "aria-expanded": "false",
    "aria-controls": `entry-${e.id}`, "data-entry-details": e.id, onclick: (event) => {
      drawer.hidden = !drawer.hidden;
      event.target.setAttribute("aria-expanded", String(!drawer.hidden));
    } }, "Details") : "—";
  return [el("tr", { "data-entry-id": e.id },
    el("td", { "data-label": "When" }, when(e.at)),
    el("td", { "data-label": "Action" }, el("code", {}, e.action)),
    el("td", { "data-label": "Outcome" }, el("span", { class: `badge ${e.outcome === "success" ? "active" : "revoked"}` }, e.outcome)),
    el("td", { "data-label": "User" }, e.user_email || (e.user_id === null ? "—" : `user #${e.user_id}`)),
    el("td", { "data-label": "Key" }, e.api_key_prefix ? el("code", {}, `${e.api_key_prefix}…`) : "—"),
    el("td", { "data-label": "From" }, e.ip || "—",
      e.user_agent ? el("div", { class: "muted", title: e.user_agent, "data-agent": "" }, agentName(e.user_agent)) : null),
    el("td", { "data-label": "Target" }, e.target_type ? `${e.target_type.replaceAll("_", " ")} #${e.target_id ?? ""}` : "—"),
    el("td", { "data-label": "Details" }, toggle)), drawer];
}

let loads = 0;

async function load() {
  // Answers may arrive out of order: only the latest request draws.
  const mine = ++loads;
  const { ordering, page: pageNo, search } = listParams();
  if (ordering && !SORTABLE.includes(ordering.replace(/^-/, ""))) {
    return setListParams({ ordering: null }, true);
  }
  showFilters();
  let answer;
  try {
    answer = await api("GET", `/api/v1/audit-logs/?${query(false)}`);
  } catch (e) {
    if (mine !== loads || correctListParams(e, pageNo)) return;
    throw e;
  }
  if (mine !== loads) return;
  $("#entries thead").replaceChildren(el("tr", {},
    sortHeader("When", "at", ordering), sortHeader("Action", "action", ordering),
    ...["Outcome", "User", "Key", "From", "Target"].map((label) => sortHeader(label, null, ordering)),
    el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, "Details"))));
  const rows = answer.results.flatMap(entryRows);
  $("#entries tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 8, class: "empty" }, search ? `No entries match "${search}".` : "No entries match."))]));
  const pages = Math.max(1, Math.ceil(answer.count / PAGE_SIZE));
  $("#position").textContent = `${answer.count} entr${answer.count === 1 ? "y" : "ies"}`
    + (search ? ` matching "${search}"` : "") + (pages > 1 ? `; page ${pageNo} of ${pages}` : "");
  $("#audit-pager").replaceChildren(...[pager(pageNo, answer.count)].filter(Boolean));
}

async function exportAs(format, button) {
  await act(button, async () => {
    const q = query(true);
    q.set("format", format);
    const response = await apiRaw(`/api/v1/audit-logs/export/?${q}`);
    download(await response.blob(), `claribi-audit-log.${format}`);
  });
}

async function fillChoices() {
  $("#action").append(...ACTIONS.map((a) => el("option", { value: a }, a)));
  const users = await allPages("/api/v1/users/");
  users.sort((a, b) => a.email.localeCompare(b.email));
  $("#user").append(...users.map((u) => el("option", { value: u.id }, u.email)));
}

if (await requireSession()) {
  // Filters, search, order and page live in the address: a reload keeps the place.
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    setListParams({
      action: $("#action").value, user_id: $("#user").value, since: $("#since").value,
      until: $("#until").value, search: $("#audit-search").value.trim(), page: null,
    });
  });
  $("#export-csv").addEventListener("click", (e) => exportAs("csv", e.target));
  $("#export-json").addEventListener("click", (e) => exportAs("json", e.target));
  act(null, async () => {
    await refreshUser();
    if (adminOnly("Audit log")) return;
    await fillChoices();
    onListChange(load);
    await load();
  });
}

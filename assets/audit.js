// /admin/audit (administrators and the owner): the organization's audit log, filtered by
// action, user and days, paged, exported (with the same filters) as CSV or JSON.
import {
  $,
  act,
  adminOnly,
  agentName,
  allPages,
  apiRaw,
  countText,
  detailsList,
  download,
  drawer,
  el,
  fetchListPage,
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
  // Only what the form could have chosen: an address edited by hand cannot make the list ask
  // for something the server refuses.
  if (ACTIONS.includes(params.get("action"))) q.set("action", params.get("action"));
  if (/^\d{1,18}$/.test(params.get("user_id") || "")) q.set("user_id", params.get("user_id"));
  const day = (name, plusDays) => {
    const start = localDay(params.get(name), plusDays);
    if (start) q.set(name, start.toISOString());
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

/** The start of local day `text` (`2026-12-01`) plus `plusDays`, or null for anything but a
 *  real day of the years 1000 to 9999 (what a date field gives). */
function localDay(text, plusDays) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text || "");
  if (!m) return null;
  const [y, mo, d] = m.slice(1).map(Number);
  const day = new Date(2000, mo - 1, d);
  day.setFullYear(y);
  if (y < 1000 || day.getFullYear() !== y || day.getMonth() !== mo - 1 || day.getDate() !== d) return null;
  day.setDate(day.getDate() + plusDays);
  return day.getFullYear() <= 9999 ? day : null;
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
  if (!entries.length) return null;
  return detailsList(entries.map(([k, v]) => [k.replaceAll("_", " "),
    v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v)]));
}

/** An entry's row, compact (the user agent named, not spelled out), and its drawer: the full
 *  user agent and the entry's details. */
function entryRows(e) {
  const agent = e.user_agent ? detailsList([["User agent", e.user_agent]]) : null;
  const detailed = details(e);
  const more = agent || detailed
    ? drawer(`entry-${e.id}`, 8, [agent, detailed], "Details", `of ${e.action} at ${when(e.at)}`, {})
    : null;
  if (more) more.toggle.dataset.entryDetails = e.id;
  return [el("tr", { "data-entry-id": e.id },
    el("td", { "data-label": "When" }, when(e.at)),
    el("td", { "data-label": "Action" }, el("code", {}, e.action)),
    el("td", { "data-label": "Outcome" }, el("span", { class: `badge ${e.outcome === "success" ? "active" : "revoked"}` }, e.outcome)),
    el("td", { "data-label": "User" }, e.user_email || (e.user_id === null ? "—" : `user #${e.user_id}`)),
    el("td", { "data-label": "Key" }, e.api_key_prefix ? el("code", {}, `${e.api_key_prefix}…`) : "—"),
    el("td", { "data-label": "From" }, e.ip || "—",
      e.user_agent ? el("div", { class: "muted", title: e.user_agent, "data-agent": "" }, agentName(e.user_agent)) : null),
    el("td", { "data-label": "Target" }, e.target_type ? `${e.target_type.replaceAll("_", " ")} #${e.target_id ?? ""}` : "—"),
    el("td", { "data-label": "Details" }, more ? more.toggle : "—")), ...(more ? [more.row] : [])];
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
  const answer = await fetchListPage("/api/v1/audit-logs/", query(false), pageNo, () => mine === loads);
  if (!answer) return;
  $("#entries thead").replaceChildren(el("tr", {},
    sortHeader("When", "at", ordering), sortHeader("Action", "action", ordering),
    ...["Outcome", "User", "Key", "From", "Target"].map((label) => sortHeader(label, null, ordering)),
    el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, "Details"))));
  const rows = answer.results.flatMap(entryRows);
  $("#entries tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 8, class: "empty" }, search ? `No entries match "${search}".` : "No entries match."))]));
  $("#position").textContent = countText(answer.count, ["entry", "entries"], search, pageNo);
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

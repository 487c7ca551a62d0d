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
  download,
  el,
  refreshUser,
  requireSession,
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

let page = 1;
/** The filters last applied (paging and exports use these, not half-edited inputs). */
let applied = new URLSearchParams();

/** The filters as the API's query: days are local days, sent as times with their offset. */
function filters() {
  const q = new URLSearchParams();
  const action = $("#action").value;
  const user = $("#user").value;
  if (action) q.set("action", action);
  if (user) q.set("user_id", user);
  const localDay = (text, plusDays) => {
    const [y, m, d] = text.split("-").map(Number);
    return new Date(y, m - 1, d + plusDays).toISOString();
  };
  if ($("#since").value) q.set("since", localDay($("#since").value, 0));
  if ($("#until").value) q.set("until", localDay($("#until").value, 1));
  return q;
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

async function load() {
  const q = new URLSearchParams(applied);
  q.set("page", String(page));
  q.set("page_size", "50");
  const answer = await api("GET", `/api/v1/audit-logs/?${q}`);
  const rows = answer.results.flatMap(entryRows);
  $("#entries tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 8, class: "empty" }, "No entries match."))]));
  $("#previous").disabled = !answer.previous;
  $("#next").disabled = !answer.next;
  $("#position").textContent = `${answer.count} entr${answer.count === 1 ? "y" : "ies"}, page ${page}`;
}

async function exportAs(format, button) {
  await act(button, async () => {
    const q = new URLSearchParams(applied);
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
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    page = 1;
    const before = applied;
    applied = filters();
    act($("#apply"), async () => {
      try {
        await load();
      } catch (e) {
        applied = before;
        throw e;
      }
    }, $("#filter-message"));
  });
  $("#previous").addEventListener("click", (e) => { page -= 1; act(e.target, load); });
  $("#next").addEventListener("click", (e) => { page += 1; act(e.target, load); });
  $("#export-csv").addEventListener("click", (e) => exportAs("csv", e.target));
  $("#export-json").addEventListener("click", (e) => exportAs("json", e.target));
  act(null, async () => {
    await refreshUser();
    if (adminOnly("Audit log")) return;
    await fillChoices();
    await load();
  });
}

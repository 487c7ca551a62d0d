// The overview (/) and the pages of the BI content, read-only but for what the caller's role
// allows: /reports[/id], /dashboards[/id], /goals[/id], /data-sources, /usage, and the Settings
// area's index pages and /settings/organization. One shell page (app.html); the path decides.
import {
  $,
  act,
  adminOnly,
  allPages,
  api,
  ApiError,
  clearFieldErrors,
  confirmIn,
  countText,
  detailsList,
  el,
  errorText,
  fetchListPage,
  listParams,
  openDialog,
  onListChange,
  PAGE_SIZE,
  pager,
  refreshUser,
  requireSession,
  say,
  Session,
  setListParams,
  showFieldErrors,
  sortHeader,
  when,
  copyText,
} from "./common.js";
import { markdown } from "./markdown.js";
import { SETTINGS } from "./pages.js";

const main = () => $("#page");

/** Replaces the page's content (the message box stays first). */
function show(title, ...content) {
  document.title = `${title} - clariBI`;
  main().replaceChildren($("#message") || el("div", { class: "message", id: "message", role: "status", hidden: true }),
    el("h1", {}, title), ...content.filter((c) => c !== null && c !== undefined && c !== false));
}

/** A table that scrolls sideways on its own on a narrow screen. */
function table(headers, rows, empty) {
  return el("div", { class: "table-wrap" }, el("table", { class: "stack" },
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: headers.length, class: "empty" }, empty))]))));
}

/**
 * A list of the API as the address says (`?search=&ordering=&page=`): searched, sorted by a
 * column header, a page at a time, so that a reload, the back button or a shared address
 * shows the same rows. `columns`: `[label, field it sorts by or null, cell(row)]`.
 */
let listLoads = 0;

async function listView({ title, path, noun, columns, rowAttrs, empty, intro }) {
  // Answers may arrive out of order: only the latest request draws.
  const mine = ++listLoads;
  onListChange(() => listView({ title, path, noun, columns, rowAttrs, empty, intro }));
  const { search, ordering, page: pageNo } = listParams();
  const sortable = columns.map(([, field]) => field).filter(Boolean);
  if (ordering && !sortable.includes(ordering.replace(/^-/, ""))) {
    return setListParams({ ordering: null }, true);
  }
  const query = new URLSearchParams({ page: String(pageNo), page_size: String(PAGE_SIZE) });
  if (search) query.set("search", search);
  if (ordering) query.set("ordering", ordering);
  const page = await fetchListPage(path, query, pageNo, () => mine === listLoads);
  if (!page) return;
  const counted = countText(page.count, [noun, `${noun}s`], search, pageNo);
  const field = el("input", { type: "search", id: "list-search", name: "search", value: search,
    autocomplete: "off" });
  const form = el("form", { class: "search", role: "search",
    onsubmit: (e) => { e.preventDefault(); setListParams({ search: field.value.trim(), page: null }); } },
  el("label", { for: "list-search" }, `Search the ${noun}s`), field,
  el("button", { type: "submit", class: "secondary" }, "Search"),
  search ? el("button", { type: "button", class: "link", onclick: () => setListParams({ search: null, page: null }) }, "Show all") : null);
  const rows = page.results.map((r) => el("tr", rowAttrs(r), ...columns.map(([, , cell]) => el("td", {}, cell(r)))));
  show(title,
    intro || null,
    form,
    el("p", { class: "muted", id: "list-count", role: "status" }, counted),
    el("div", { class: "table-wrap" }, el("table", { class: "stack" },
      el("thead", {}, el("tr", {}, ...columns.map(([label, sortField]) => sortHeader(label, sortField, ordering)))),
      el("tbody", {}, ...(rows.length ? rows
        : [el("tr", {}, el("td", { colspan: columns.length, class: "empty" }, search ? `No ${noun}s match "${search}".` : empty))])))),
    pager(pageNo, page.count));
  sizeBars();
}

function link(href, text) {
  return el("a", { href }, text);
}

function number(value) {
  return Number(value).toLocaleString(undefined, { maximumFractionDigits: 2 });
}

/** A list endpoint's count (one row read). */
async function count(path) {
  try {
    return (await api("GET", `${path}?page_size=1`)).count;
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) return null;
    throw e;
  }
}

let permissions = [];
const may = (p) => permissions.includes(p);

/** A part of a page the caller's role does not reach: said plainly, not as an error. */
function notForYou(what) {
  return el("section", { class: "card", id: "not-allowed" },
    el("p", {}, `Your role (${Session.user ? Session.user.role : "?"}) does not include ${what}.`));
}

async function overview() {
  const [org, credits, reports, dashboards, goals, sources] = await Promise.all([
    api("GET", "/api/v1/organization/"),
    may("usage:read") ? api("GET", "/api/v1/usage/") : null,
    may("reports:read") ? count("/api/v1/reports/") : null,
    may("dashboards:read") ? count("/api/v1/dashboards/") : null,
    may("goals:read") ? count("/api/v1/goals/") : null,
    may("data_sources:read") ? count("/api/v1/data-sources/") : null,
  ]);
  const keys = (await api("GET", "/api/auth/api-keys/?page_size=100")).results;
  const soon = keys.filter((k) => k.status === "active" && k.expires_at && !k.replaced_by
    && new Date(k.expires_at) - Date.now() < 14 * 86400 * 1000);
  const figure = (label, value, href) => el("section", { class: "card" },
    el("div", { class: "muted" }, label),
    el("div", { class: "figure" }, value === null ? "—" : number(value)),
    href && value !== null ? link(href, `See ${label.toLowerCase()}`) : null);
  const parts = [
    el("p", { class: "muted", id: "organization-name" }, `Organization: ${org.name}`),
    el("div", { class: "cards" },
      figure("Credits used this month", credits ? credits.credits_used : null, "/usage"),
      figure("Reports", reports, "/reports"),
      figure("Dashboards", dashboards, "/dashboards"),
      figure("Goals", goals, "/goals"),
      figure("Data sources", sources, "/data-sources")),
    el("section", { class: "card", id: "get-started" },
      el("h2", {}, "Connect an integration"),
      el("ol", {},
        el("li", {}, "Open ", link("/settings", "Settings"), "."),
        el("li", {}, "Choose ", link("/settings/developer", "Developer"), ", then ", link("/settings/developer/api-keys", "API Keys"), "."),
        el("li", {}, "Click Generate New Key."),
        el("li", {}, "Name the key, pick its expiry and scopes."),
        el("li", {}, "Copy the key: it is shown once."))),
    el("section", { class: "card", id: "expiring-keys" },
      el("h2", {}, "Your keys expiring within 14 days"),
      soon.length
        ? el("ul", {}, ...soon.map((k) => el("li", {}, `"${k.name}" (${k.prefix}…) expires ${when(k.expires_at)}`)))
        : el("p", { class: "muted" }, "None.")),
  ];
  if (Session.isAdmin()) {
    const recent = (await api("GET", "/api/v1/audit-logs/?page_size=5")).results;
    parts.push(el("section", { class: "card", id: "recent-audit" },
      el("h2", {}, "Recent audit entries"),
      el("ul", {}, ...recent.map((e) => el("li", {}, `${when(e.at)}: `, el("code", {}, e.action),
        ` (${e.outcome})${e.user_email ? ` by ${e.user_email}` : ""}`))),
      link("/admin/audit", "Open the audit log")));
  }
  show("Overview", ...parts);
}

async function reportsList() {
  if (!may("reports:read")) return show("Reports", notForYou("reports"));
  return listView({
    title: "Reports",
    path: "/api/v1/reports/",
    noun: "report",
    rowAttrs: (r) => ({ "data-report-id": r.id }),
    columns: [
      ["Title", "title", (r) => link(`/reports/${r.id}`, r.title)],
      ["Status", "status", (r) => r.status],
      ["Credits", "credits_used", (r) => String(r.credits_used)],
      ["Created", "created_at", (r) => when(r.created_at)],
    ],
    empty: "No reports yet.",
    intro: may("reports:generate") ? await generateForm() : null,
  });
}

/** Generates a report from a data source (charged to the month's credits), then opens it. */
async function generateForm() {
  const sources = await allPages("/api/v1/data-sources/");
  const form = el("form", { class: "card", id: "generate", novalidate: true },
    el("h2", {}, "Generate a report"),
    el("label", { for: "generate-title" }, "Title"),
    el("input", { type: "text", id: "generate-title", "data-field": "title", maxlength: 200, required: true }),
    el("label", { for: "generate-source" }, "Data source"),
    el("select", { id: "generate-source", "data-field": "data_source_id" },
      ...(sources.length ? sources.map((d) => el("option", { value: d.id }, `${d.name} (${d.source_type})`))
        : [el("option", { value: "" }, "No data source yet")])),
    el("label", { for: "generate-prompt" }, "Question (optional)"),
    el("textarea", { id: "generate-prompt", "data-field": "prompt", rows: 2, maxlength: 2000 }),
    el("div", { class: "message", hidden: true, id: "generate-message", role: "status" }),
    el("div", { class: "actions" },
      el("button", { type: "submit", id: "generate-submit", disabled: !sources.length }, "Generate"),
      el("span", { class: "muted" }, "Charged to this month's credits.")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act($("#generate-submit"), async () => {
      const body = { title: $("#generate-title").value.trim(), data_source_id: Number($("#generate-source").value) };
      const prompt = $("#generate-prompt").value.trim();
      if (prompt) body.prompt = prompt;
      const made = await api("POST", "/api/v1/reports/generate/", body);
      location.assign(`/reports/${made.id}`);
    }, $("#generate-message"));
  });
  return form;
}

async function reportOne(id) {
  if (!may("reports:read")) return show("Report", notForYou("reports"));
  const r = await api("GET", `/api/v1/reports/${id}/`);
  show(r.title,
    el("p", {}, link("/reports", "← All reports")),
    el("section", { class: "card" }, detailsList([
      ["Status", r.status],
      ["Created", when(r.created_at)],
      ["Completed", when(r.completed_at)],
      ["Credits", String(r.credits_used)],
      ["Prompt", r.prompt || "—"],
    ])),
    may("reports:share") ? await shareCard("report", id) : null,
    el("h2", {}, "Summary"), el("p", { id: "report-summary" }, r.summary),
    el("h2", {}, "Content"), el("article", { class: "card markdown", id: "report-content" }, markdown(r.content)));
}

const EXPIRIES = [["1", "1 day"], ["7", "7 days"], ["30", "30 days"], ["90", "90 days"], ["365", "1 year"], ["never", "Never"]];

/**
 * A report's or dashboard's public link: its address, views and expiry; made (or replaced)
 * with a chosen expiry; revoked after a confirmation. A link lets anyone read the page at /s/
 * without signing in.
 */
async function shareCard(kind, id) {
  const base = `/api/v1/${kind}s/${id}/public-link/`;
  let current = null;
  try {
    current = await api("GET", base);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) throw e;
  }
  const card = el("section", { class: "card", id: "share" });
  const draw = (shared, said) => {
    const box = el("div", { class: "message", hidden: true, id: "share-message", role: "status" });
    const expiry = el("select", { id: "share-expiry" },
      ...EXPIRIES.map(([value, text]) => el("option", { value, selected: value === "30" }, text)));
    const make = el("button", { type: "button", id: "share-create", class: shared ? "secondary" : null },
      shared ? "Replace the link" : "Create a link");
    const createLink = async () => {
      const days = expiry.value === "never" ? null : Number(expiry.value);
      const made = await api("POST", base, { expires_in_days: days });
      draw(made, shared ? "A new link replaces the old one, which no longer works."
        : `Anyone with this link can read the ${kind} without signing in.`);
    };
    // A new link ends the old one: asked first, as a revocation is.
    make.addEventListener("click", () => (shared
      ? openDialog({
        title: `Replace the public link of this ${kind}?`,
        body: [el("p", {}, "The current link stops working at once; whoever has it needs the new one.")],
        yes: { label: "Replace", id: "share-replace-confirm" },
        onYes: createLink,
        refocus: () => $("#share-create"),
      })
      : act(make, createLink, box)));
    const actions = el("div", { class: "actions", id: "share-actions" }, make);
    const parts = [el("h2", {}, "Public link")];
    if (shared) {
      const address = el("code", { id: "share-url" }, shared.url);
      const copy = el("button", { type: "button", class: "secondary", onclick: (e) => copyText(shared.url, address, e.target) }, "Copy");
      parts.push(
        el("div", { class: "secret" }, address, copy),
        el("p", { class: "muted", id: "share-facts" },
          `Viewed ${shared.view_count} time${shared.view_count === 1 ? "" : "s"}; `
          + `${shared.expires_at ? `expires ${when(shared.expires_at)}` : "never expires"}; created ${when(shared.created_at)}. `,
          el("a", { href: shared.url, target: "_blank", rel: "noopener noreferrer" }, "Open the shared page")));
      const revoke = el("button", { type: "button", class: "danger", id: "share-revoke" }, "Revoke the link");
      revoke.addEventListener("click", () => openDialog({
        title: `Revoke the public link of this ${kind}?`,
        body: [el("p", {}, "Whoever has it can no longer read it. This cannot be undone; a new link can be made.")],
        yes: { label: "Revoke", class: "danger", id: "share-revoke-confirm" },
        onYes: async () => {
          await api("DELETE", base);
          draw(null, "The link is revoked: it no longer works.");
        },
        refocus: () => $("#share-create"),
      }));
      actions.append(revoke);
    } else {
      parts.push(el("p", { class: "muted", id: "share-facts" },
        `Not shared. A public link lets anyone who has it read this ${kind}, without signing in, until it expires or is revoked.`));
    }
    parts.push(el("label", { for: "share-expiry" }, shared ? "A new link expires after" : "The link expires after"), expiry, box, actions);
    const focused = card.contains(document.activeElement);
    card.replaceChildren(...parts);
    if (said) say(said, "ok", box);
    // Drawn anew after an action from the card: the focus stays in it, on its first button.
    if (focused) make.focus();
  };
  draw(current);
  return card;
}

function widgetText(w) {
  const rest = Object.entries(w).filter(([k]) => k !== "type")
    .map(([k, v]) => `${k}: ${v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : v}`);
  return rest.join(", ");
}

async function dashboardsList() {
  if (!may("dashboards:read")) return show("Dashboards", notForYou("dashboards"));
  return listView({
    title: "Dashboards",
    path: "/api/v1/dashboards/",
    noun: "dashboard",
    rowAttrs: (d) => ({ "data-dashboard-id": d.id }),
    columns: [
      ["Name", "name", (d) => [link(`/dashboards/${d.id}`, d.name),
        d.description ? el("div", { class: "muted" }, d.description) : null]],
      ["Widgets", null, (d) => String((d.widgets || []).length)],
      ["Last refreshed", "last_refreshed_at", (d) => when(d.last_refreshed_at)],
      ["Updated", "updated_at", (d) => when(d.updated_at)],
    ],
    empty: "No dashboards yet.",
  });
}

async function dashboardOne(id) {
  if (!may("dashboards:read")) return show("Dashboard", notForYou("dashboards"));
  const d = await api("GET", `/api/v1/dashboards/${id}/`);
  const refreshed = el("span", { id: "last-refreshed" }, when(d.last_refreshed_at));
  const refresh = may("dashboards:refresh")
    ? el("button", { id: "refresh", onclick: (e) => act(e.target, async () => {
      const fresh = await api("POST", `/api/v1/dashboards/${id}/refresh/`);
      refreshed.textContent = when(fresh.last_refreshed_at);
      say("Dashboard refreshed; the refresh was charged to this month's credits.", "ok");
    }) }, "Refresh")
    : el("p", { class: "muted" }, "Your role cannot refresh dashboards.");
  show(d.name,
    el("p", {}, link("/dashboards", "← All dashboards")),
    d.description ? el("p", {}, d.description) : null,
    el("p", {}, "Last refreshed: ", refreshed),
    el("div", { class: "actions" }, refresh),
    may("dashboards:share") ? await shareCard("dashboard", id) : null,
    el("h2", {}, "Widgets"),
    table(["Type", "Settings"], (d.widgets || []).map((w) => el("tr", {},
      el("td", {}, el("code", {}, String(w.type))),
      el("td", {}, widgetText(w)))), "This dashboard has no widgets."));
}

function progressBar(percent) {
  const clamped = Math.max(0, Math.min(100, percent));
  return el("div", { class: "progress", role: "progressbar", "aria-valuenow": String(clamped),
    "aria-valuemin": "0", "aria-valuemax": "100", "aria-label": "Progress" },
  el("span", { style: null, "data-width": String(clamped) }));
}

/** Widths are set from script (the pages' policy allows no inline style attribute). */
function sizeBars() {
  for (const bar of document.querySelectorAll(".progress span[data-width]")) {
    bar.style.width = `${bar.dataset.width}%`;
  }
}

async function goalsList() {
  if (!may("goals:read")) return show("Goals", notForYou("goals"));
  const percent = (g) => (g.target_value ? (100 * g.current_value) / g.target_value : 100);
  return listView({
    title: "Goals",
    path: "/api/v1/goals/",
    noun: "goal",
    rowAttrs: (g) => ({ "data-goal-id": g.id }),
    columns: [
      ["Goal", "name", (g) => link(`/goals/${g.id}`, g.name)],
      ["Progress", "current_value", (g) => [progressBar(percent(g)), `${number(g.current_value)} ${g.unit}`]],
      ["Target", "target_value", (g) => `${number(g.target_value)} ${g.unit}`],
      ["Due", "due_date", (g) => g.due_date || "—"],
    ],
    empty: "No goals yet.",
  });
}

async function goalOne(id) {
  if (!may("goals:read")) return show("Goal", notForYou("goals"));
  const [g, p] = await Promise.all([
    api("GET", `/api/v1/goals/${id}/`),
    api("GET", `/api/v1/goals/${id}/progress/`),
  ]);
  show(g.name,
    el("p", {}, link("/goals", "← All goals")),
    g.description ? el("p", {}, g.description) : null,
    el("section", { class: "card" },
      el("p", { id: "goal-percent" }, `${number(p.percent)} % of ${number(g.target_value)} ${g.unit}`),
      progressBar(p.percent),
      el("p", { class: "muted" }, `${p.milestones_reached} of ${p.milestones_total} milestones reached; due ${g.due_date || "—"}.`)),
    el("h2", {}, "Milestones"),
    table(["Milestone", "Target", "Reached"], g.milestones.map((m) => el("tr", {},
      el("td", {}, m.name), el("td", {}, `${number(m.target_value)} ${g.unit}`),
      el("td", {}, m.reached_at ? when(m.reached_at) : "not yet"))), "No milestones."),
    may("goals:write") ? progressForm(g) : null,
    el("h2", {}, "Progress recorded"),
    table(["When", "Value"], p.history.map((h) => el("tr", {},
      el("td", {}, when(h.at)), el("td", {}, `${number(h.value)} ${g.unit}`))), "Nothing recorded yet."));
  sizeBars();
}

/** Records where a goal stands now; the page then shows it with the milestones it reached. */
function progressForm(g) {
  const form = el("form", { class: "card", id: "record-progress", novalidate: true },
    el("h2", {}, "Record progress"),
    el("label", { for: "progress-value" }, `Value now (${g.unit})`),
    el("input", { type: "number", id: "progress-value", "data-field": "value", step: "any", required: true,
      value: g.current_value }),
    el("div", { class: "message", hidden: true, id: "progress-message", role: "status" }),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "progress-submit" }, "Record")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const raw = $("#progress-value").value.trim();
    let recorded = false;
    act($("#progress-submit"), async () => {
      await api("POST", `/api/v1/goals/${g.id}/progress/`, { value: raw === "" ? null : Number(raw) });
      recorded = true;
    }, $("#progress-message")).then(() => recorded && act(null, async () => {
      // The page drawn anew, then said on it (a failure to draw is said on the page as it is).
      await goalOne(g.id);
      say(`Recorded ${number(Number(raw))} ${g.unit}.`, "ok");
    }));
  });
  return form;
}

async function dataSources() {
  if (!may("data_sources:read")) return show("Data sources", notForYou("data sources"));
  return listView({
    title: "Data sources",
    path: "/api/v1/data-sources/",
    noun: "data source",
    rowAttrs: (d) => ({ "data-source-id": d.id }),
    columns: [
      ["Name", "name", (d) => d.name],
      ["Type", "source_type", (d) => SOURCE_TYPES[d.source_type] || d.source_type],
      ["Status", "status", (d) => d.status],
      ["Added", "created_at", (d) => when(d.created_at)],
      ...(may("data_sources:write") ? [["Actions", null, removeSource]] : []),
    ],
    empty: "No data sources yet.",
    intro: may("data_sources:write") ? sourceForm() : null,
  });
}

const SOURCE_TYPES = {
  file: "File", database: "Database", api: "API", google_analytics: "Google Analytics",
  google_sheets: "Google Sheets", bigquery_query: "BigQuery query",
};

function sourceForm() {
  const form = el("form", { class: "card", id: "add-source", novalidate: true },
    el("h2", {}, "Add a data source"),
    el("label", { for: "source-name" }, "Name"),
    el("input", { type: "text", id: "source-name", "data-field": "name", maxlength: 200, required: true }),
    el("label", { for: "source-type" }, "Type"),
    el("select", { id: "source-type", "data-field": "source_type" },
      ...Object.entries(SOURCE_TYPES).map(([value, text]) => el("option", { value }, text))),
    el("div", { class: "message", hidden: true, id: "source-message", role: "status" }),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "source-submit" }, "Add")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    let made = null;
    act($("#source-submit"), async () => {
      made = await api("POST", "/api/v1/data-sources/",
        { name: $("#source-name").value.trim(), source_type: $("#source-type").value });
    }, $("#source-message")).then(() => made && act(null, async () => {
      await dataSources();
      say(`Added the data source "${made.name}".`, "ok");
    }));
  });
  return form;
}

/** A row's Delete, asked first. Reports made from the source stay, without it. */
function removeSource(d) {
  return el("button", { type: "button", class: "link", "data-delete-source": d.id, onclick: () => openDialog({
    title: `Delete the data source "${d.name}"?`,
    body: [el("p", {}, "Reports made from it stay, without their source.")],
    yes: { label: "Delete", class: "danger", "data-confirm-delete": d.id },
    onYes: () => api("DELETE", `/api/v1/data-sources/${d.id}/`),
    after: async () => {
      await dataSources();
      say(`Deleted the data source "${d.name}".`, "ok");
    },
  }) }, "Delete");
}

async function usage() {
  if (!may("usage:read")) return show("Usage", notForYou("the credit usage"));
  const u = await api("GET", "/api/v1/usage/");
  const percent = u.credits_included ? (100 * u.credits_used) / u.credits_included : 0;
  show("Usage",
    el("section", { class: "card" },
      el("p", { id: "credits" }, `${number(u.credits_used)} of ${number(u.credits_included)} credits used from ${when(u.period_start)} to ${when(u.period_end)}; ${number(u.credits_remaining)} left.`),
      progressBar(percent)),
    table(["Spent on", "Credits"], [
      el("tr", {}, el("td", {}, "Report generation"), el("td", {}, number(u.by_kind.report_generation))),
      el("tr", {}, el("td", {}, "Dashboard refreshes"), el("td", {}, number(u.by_kind.dashboard_refresh))),
    ], ""));
  sizeBars();
}

function settingsIndex(developer) {
  const index = developer ? "/settings/developer" : "/settings";
  const list = SETTINGS.filter((page) => page.index === index && (!page.admin || Session.isAdmin()));
  show(developer ? "Developer" : "Settings",
    el("ul", { class: "settings-index" }, ...list.map(({ href, title, what }) =>
      el("li", {}, link(href, title), el("span", { class: "muted" }, `: ${what}`)))));
}

async function organization() {
  if (adminOnly("Organization")) return;
  const org = await api("GET", "/api/v1/organization/");
  if (!may("organization:manage")) {
    return show("Organization",
      el("p", { class: "muted" }, `Created ${when(org.created_at)}.`),
      el("section", { class: "card", id: "organization-name" },
        el("p", {}, `The organization is called "${org.name}".`),
        el("p", { class: "muted" }, "Only the owner can rename it or transfer its ownership.")));
  }
  const rename = el("form", { class: "card", id: "rename", novalidate: true },
    el("h2", {}, "Name"),
    el("label", { for: "org-name" }, "Organization name"),
    el("input", { type: "text", id: "org-name", "data-field": "name", maxlength: 100, value: org.name }),
    el("div", { class: "message", hidden: true, id: "rename-message", role: "status" }),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "rename-submit" }, "Rename")));
  rename.addEventListener("submit", (event) => {
    event.preventDefault();
    act($("#rename-submit"), async () => {
      const renamed = await api("PATCH", "/api/v1/organization/", { name: $("#org-name").value.trim() });
      say(`The organization is now called "${renamed.name}".`, "ok", $("#rename-message"));
    }, $("#rename-message"));
  });
  const parts = [el("p", { class: "muted" }, `Created ${when(org.created_at)}.`), rename];
  if (Session.user && Session.user.role === "owner") {
    const admins = (await allPages("/api/v1/users/")).filter((u) => u.role === "administrator" && u.is_active);
    const transfer = el("form", { class: "card", id: "transfer", novalidate: true },
      el("h2", {}, "Transfer ownership"),
      el("p", { class: "muted" }, "The new owner must be an administrator. You become an administrator; only the owner can transfer ownership again."),
      el("label", { for: "new-owner" }, "New owner"),
      el("select", { id: "new-owner", "data-field": "user_id" },
        ...(admins.length ? admins.map((u) => el("option", { value: u.id }, u.email))
          : [el("option", { value: "" }, "No administrator to choose")])),
      el("label", { for: "transfer-password" }, "Your password"),
      el("input", { type: "password", id: "transfer-password", "data-field": "password", autocomplete: "current-password" }),
      el("div", { class: "message", hidden: true, id: "transfer-message", role: "status" }),
      el("div", { class: "actions", id: "transfer-actions" },
        el("button", { type: "submit", class: "danger", id: "transfer-submit", disabled: !admins.length }, "Transfer ownership")));
    transfer.addEventListener("submit", (event) => {
      event.preventDefault();
      const who = $("#new-owner").selectedOptions[0];
      if (!who || !who.value) return;
      const actions = $("#transfer-actions");
      const original = [...actions.childNodes];
      clearFieldErrors(transfer);
      say("", "ok", $("#transfer-message"));
      confirmIn(actions, `Make ${who.textContent} the owner of ${org.name}? You become an administrator and cannot undo this yourself.`,
        "Yes, transfer", { id: "transfer-confirm" }, async () => {
          try {
            await api("POST", "/api/v1/organization/transfer-ownership/",
              { user_id: Number(who.value), password: $("#transfer-password").value });
          } catch (e) {
            actions.replaceChildren(...original);
            // A wrong password is said at the password field.
            const left = e instanceof ApiError ? showFieldErrors(transfer, e) : { marked: false, others: [] };
            say(left.marked ? "Please correct the field marked below." : errorText(e), "error", $("#transfer-message"));
            const field = transfer.querySelector("[aria-invalid='true']");
            if (field) field.scrollIntoView({ block: "center" });
            return;
          }
          await refreshUser();
          actions.replaceChildren();
          say(`${who.textContent} is now the owner.`, "ok", $("#transfer-message"));
        }, () => actions.replaceChildren(...original));
    });
    parts.push(transfer);
  }
  show("Organization", ...parts);
}

const ROUTES = [
  [/^\/$/, overview],
  [/^\/reports$/, reportsList],
  [/^\/reports\/(\d+)$/, reportOne],
  [/^\/dashboards$/, dashboardsList],
  [/^\/dashboards\/(\d+)$/, dashboardOne],
  [/^\/goals$/, goalsList],
  [/^\/goals\/(\d+)$/, goalOne],
  [/^\/data-sources$/, dataSources],
  [/^\/usage$/, usage],
  [/^\/settings$/, () => settingsIndex(false)],
  [/^\/settings\/developer$/, () => settingsIndex(true)],
  [/^\/settings\/organization$/, organization],
];

if (await requireSession()) {
  const path = location.pathname.replace(/\/$/, "") || "/";
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  act(null, async () => {
    await refreshUser();
    permissions = (await api("GET", "/api/v1/auth/verify/")).permissions;
    if (!route) return show("Page not found", el("p", {}, "There is no page here. ", link("/", "Go to the overview"), "."));
    const [pattern, render] = route;
    await render(...path.match(pattern).slice(1));
  }).finally(() => { const l = $("#loading"); if (l) l.remove(); });
}

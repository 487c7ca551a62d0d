// /admin/audit (administrators and the owner): the organization's audit log, filtered, paged,
// exported as CSV or JSON.
"use strict";

let page = 1;

function query() {
  const q = new URLSearchParams({ page: String(page), page_size: "50" });
  const action = $("#action").value.trim();
  const user = $("#user-id").value.trim();
  if (action) q.set("action", action);
  if (user) q.set("user_id", user);
  return q.toString();
}

async function load() {
  const answer = await api("GET", `/api/v1/audit-logs/?${query()}`);
  const rows = answer.results.map((e) => el("tr", { "data-entry-id": e.id },
    el("td", {}, when(e.at)),
    el("td", {}, el("code", {}, e.action)),
    el("td", {}, e.outcome),
    el("td", {}, e.user_id === null ? "—" : String(e.user_id)),
    el("td", {}, e.api_key_prefix ? el("code", {}, e.api_key_prefix) : "—"),
    el("td", {}, e.ip || "—"),
    el("td", {}, e.target_type ? `${e.target_type} ${e.target_id ?? ""}` : "—"),
    el("td", { class: "mono" }, e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : ""),
  ));
  $("#entries tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 8, class: "empty" }, "No entries."))]));
  $("#previous").disabled = !answer.previous;
  $("#next").disabled = !answer.next;
  $("#position").textContent = `${answer.count} entr${answer.count === 1 ? "y" : "ies"}, page ${page}`;
}

async function exportAs(format, button) {
  await act(button, async () => {
    const response = await apiRaw(`/api/v1/audit-logs/export/?format=${format}`);
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: `claribi-audit-log.${format}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
}

if (requireSession()) {
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    page = 1;
    act($("#apply"), load);
  });
  $("#previous").addEventListener("click", () => { page -= 1; act(null, load); });
  $("#next").addEventListener("click", () => { page += 1; act(null, load); });
  $("#export-csv").addEventListener("click", (e) => exportAs("csv", e.target));
  $("#export-json").addEventListener("click", (e) => exportAs("json", e.target));
  act(null, async () => {
    await refreshUser();
    if (!Session.isAdmin()) {
      $("#filters").hidden = true;
      throw new Error("Only administrators and the owner read the audit log.");
    }
    await load();
  });
}

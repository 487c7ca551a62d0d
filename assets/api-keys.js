// /settings/developer/api-keys: the caller's keys; generate (shown once), rotate, revoke.
"use strict";

// The scopes of the contract's section 5, in its order. The server refuses a scope the
// caller's role can never use (403 scope_exceeds_role); a unit test keeps this list and
// auth::permission::SCOPES equal.
const SCOPES = [
  "reports:read", "reports:generate", "reports:delete", "reports:share",
  "dashboards:read", "dashboards:create", "dashboards:update", "dashboards:delete",
  "dashboards:refresh", "dashboards:share", "data_sources:read", "usage:read", "goals:read",
];

/** Scopes outside `allowed` (what the caller's role may do) are shown but cannot be chosen. */
function drawScopes(allowed) {
  $("#scopes").replaceChildren(...SCOPES.map((scope) => {
    const usable = allowed.includes(scope);
    return el("label", { class: "inline", title: usable ? null : "Not available to your role" },
      el("input", { type: "checkbox", value: scope, class: "scope", disabled: !usable, "data-usable": String(usable) }),
      el("code", { class: usable ? null : "muted" }, scope));
  }));
}

function showKey(key) {
  $("#new-key-value").textContent = key;
  $("#new-key").hidden = false;
  $("#new-key").scrollIntoView();
}

async function copyKey() {
  const key = $("#new-key-value").textContent;
  try {
    await navigator.clipboard.writeText(key);
    $("#copy").textContent = "Copied";
  } catch {
    // No clipboard permission: select the text for Ctrl+C.
    const range = document.createRange();
    range.selectNodeContents($("#new-key-value"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("#copy").textContent = "Press Ctrl+C";
  }
}

function dismissKey() {
  $("#new-key-value").textContent = "";
  $("#new-key").hidden = true;
  $("#copy").textContent = "Copy";
}

function statusBadge(status) {
  return el("span", { class: `badge ${status}` }, status);
}

function actions(key) {
  const cell = el("td", {});
  if (key.status !== "active") return cell;
  const confirmRevoke = () => cell.replaceChildren(
    el("span", {}, "Revoke this key? Integrations using it stop at once. "),
    el("button", { class: "danger", "data-confirm-revoke": key.id, onclick: (e) => act(e.target, async () => {
      await api("DELETE", `/api/auth/api-keys/${key.id}/`);
      say(`Key "${key.name}" revoked.`, "ok");
      await load();
    }) }, "Revoke"),
    " ",
    el("button", { class: "secondary", onclick: () => cell.replaceChildren(...buttons()) }, "Cancel"),
  );
  const buttons = () => [
    el("button", { class: "secondary", "data-rotate": key.id, onclick: (e) => act(e.target, async () => {
      const fresh = await api("POST", `/api/auth/api-keys/${key.id}/rotate/`);
      showKey(fresh.key);
      say(`Key "${key.name}" rotated: the old key no longer works.`, "ok");
      await load();
    }) }, "Rotate"),
    " ",
    el("button", { class: "danger", "data-revoke": key.id, onclick: confirmRevoke }, "Revoke"),
  ];
  cell.replaceChildren(...buttons());
  return cell;
}

async function load() {
  const all = $("#all-keys").checked ? "&all=true" : "";
  const page = await api("GET", `/api/auth/api-keys/?page_size=100${all}`);
  const rows = page.results.map((key) => el("tr", { "data-key-id": key.id },
    el("td", {}, key.name, key.description ? el("div", { class: "muted" }, key.description) : null),
    el("td", {}, el("code", {}, `${key.prefix}…`)),
    el("td", {}, key.scopes ? key.scopes.join(", ") : el("span", { class: "muted" }, "full access")),
    el("td", {}, when(key.created_at)),
    el("td", {}, key.expires_at ? when(key.expires_at) : "never"),
    el("td", {}, when(key.last_used_at)),
    el("td", {}, String(key.usage_count)),
    el("td", {}, statusBadge(key.status)),
    actions(key),
  ));
  $("#keys tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 9, class: "empty" }, "No keys yet."))]));
}

async function create(event) {
  event.preventDefault();
  const body = { name: $("#name").value.trim(), description: $("#description").value.trim() };
  const expiry = $("#expiry").value;
  body.expires_in_days = expiry === "never" ? null : Number(expiry);
  if (!$("#full-access").checked) {
    body.scopes = [...document.querySelectorAll("input.scope:checked")].map((c) => c.value);
    if (!body.scopes.length) return say("Choose at least one scope, or full access.", "error", $("#create-message"));
  }
  if (!body.name) return say("Give the key a name.", "error", $("#create-message"));
  await act($("#create-submit"), async () => {
    const key = await api("POST", "/api/auth/api-keys/", body);
    $("#create").reset();
    $("#create").hidden = true;
    showKey(key.key);
    await load();
  }, $("#create-message"));
}

function toggleFullAccess() {
  for (const box of document.querySelectorAll("input.scope")) {
    box.disabled = $("#full-access").checked || box.dataset.usable !== "true";
  }
}

if (requireSession()) {
  drawScopes([]);
  $("#generate").addEventListener("click", () => { $("#create").hidden = false; $("#name").focus(); });
  $("#create-cancel").addEventListener("click", () => { $("#create").reset(); toggleFullAccess(); $("#create").hidden = true; });
  $("#create").addEventListener("submit", create);
  $("#full-access").addEventListener("change", toggleFullAccess);
  $("#copy").addEventListener("click", copyKey);
  $("#dismiss").addEventListener("click", dismissKey);
  $("#all-keys").addEventListener("change", () => act(null, load));
  $("#all-keys-label").hidden = !Session.isAdmin();
  act(null, async () => {
    await refreshUser();
    $("#all-keys-label").hidden = !Session.isAdmin();
    drawScopes((await api("GET", "/api/v1/auth/verify/")).permissions);
    await load();
  });
}

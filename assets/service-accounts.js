// /settings/service-accounts (owner and administrators): the organization's service accounts
// and their keys, each key shown once.
import {
  $,
  act,
  adminOnly,
  allPages,
  api,
  clearFieldErrors,
  confirmIn,
  copyText,
  el,
  refreshUser,
  requireSession,
  resumeFields,
  say,
  when,
} from "./common.js";

let editing = null; // the account being edited, or null when adding
let open = null; // the account whose keys are shown

function body() {
  return {
    name: $("#name").value.trim(),
    role: $("#role").value,
    description: $("#description").value.trim(),
  };
}

function edit(a) {
  editing = a;
  // An edit is not kept across a session's end: a restored form would add, not change.
  $("#account-form").removeAttribute("data-resume");
  $("#form-title").textContent = `Edit ${a.name}`;
  $("#save").textContent = "Save changes";
  $("#cancel-edit").hidden = false;
  $("#name").value = a.name;
  $("#role").value = a.role;
  $("#description").value = a.description;
  $("#account-form").scrollIntoView({ block: "start" });
  $("#name").focus();
}

function stopEditing() {
  editing = null;
  $("#account-form").setAttribute("data-resume", "");
  $("#account-form").reset();
  clearFieldErrors($("#account-form"));
  say("", "error", $("#form-message"));
  $("#form-title").textContent = "Add a service account";
  $("#save").textContent = "Add service account";
  $("#cancel-edit").hidden = true;
}

async function save(event) {
  event.preventDefault();
  await act($("#save"), async () => {
    const saved = editing
      ? await api("PATCH", `/api/v1/service-accounts/${editing.id}/`, body())
      : await api("POST", "/api/v1/service-accounts/", body());
    const added = !editing;
    stopEditing();
    say(`${saved.name} saved.${added ? " Give it a key with Keys." : ""}`, "ok");
    await load();
  }, $("#form-message"));
}

function actions(cell, a) {
  const buttons = [
    el("button", { class: "secondary", "data-keys": a.id, onclick: () => showKeys(a) }, "Keys"),
    el("button", { class: "secondary", "data-edit": a.id, onclick: () => edit(a) }, "Edit"),
  ];
  if (a.is_active) {
    buttons.push(el("button", {
      class: "danger",
      "data-deactivate": a.id,
      onclick: () => confirmIn(cell,
        `Deactivate ${a.name}? Its ${a.key_count} key${a.key_count === 1 ? "" : "s"} stop working at once and stay revoked.`,
        "Deactivate", { "data-confirm-deactivate": a.id }, async () => {
          await api("PATCH", `/api/v1/service-accounts/${a.id}/`, { is_active: false });
          say(`${a.name} deactivated: its keys are revoked.`, "ok");
          await load();
        }, () => actions(cell, a)),
    }, "Deactivate"));
  } else {
    buttons.push(el("button", {
      class: "secondary",
      "data-activate": a.id,
      onclick: (e) => act(e.target, async () => {
        await api("PATCH", `/api/v1/service-accounts/${a.id}/`, { is_active: true });
        say(`${a.name} is active again. Its old keys stay revoked: give it a new one.`, "ok");
        await load();
      }),
    }, "Activate"));
  }
  buttons.push(el("button", {
    class: "danger",
    "data-delete": a.id,
    onclick: () => confirmIn(cell,
      `Delete ${a.name}? Its keys stop working at once; the audit log keeps what it did.`,
      "Delete", { "data-confirm-delete": a.id }, async () => {
        await api("DELETE", `/api/v1/service-accounts/${a.id}/`);
        if (editing && editing.id === a.id) stopEditing();
        if (open && open.id === a.id) closeKeys();
        say(`${a.name} deleted.`, "ok");
        await load();
      }, () => actions(cell, a)),
  }, "Delete"));
  cell.replaceChildren(...buttons.flatMap((b) => [b, " "]));
}

async function load() {
  const accounts = await allPages("/api/v1/service-accounts/");
  const rows = accounts.map((a) => {
    const cell = el("td", { class: "row-actions" });
    actions(cell, a);
    return el("tr", { "data-account-id": a.id },
      el("td", {}, a.name),
      el("td", {}, a.role),
      el("td", {}, el("span", { class: `badge ${a.is_active ? "active" : "inactive"}` }, a.is_active ? "active" : "deactivated")),
      el("td", {}, String(a.key_count)),
      el("td", {}, a.description || "—"),
      cell);
  });
  $("#accounts tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { class: "empty", colspan: 6 }, "No service account yet."))]));
  if (open) {
    const still = accounts.find((a) => a.id === open.id);
    if (still) await showKeys(still, false); else closeKeys();
  }
}

function closeKeys() {
  open = null;
  $("#keys").hidden = true;
  $("#new-key").hidden = true;
}

async function showKeys(a, scroll = true) {
  open = a;
  $("#keys").hidden = false;
  $("#keys-title").textContent = `Keys of ${a.name} (${a.role})`;
  $("#key-submit").disabled = !a.is_active;
  const keys = await allPages(`/api/v1/service-accounts/${a.id}/keys/`);
  const rows = keys.map((k) => {
    const cell = el("td", { class: "row-actions" });
    const revoke = () => cell.replaceChildren(el("button", {
      class: "danger",
      "data-revoke": k.id,
      onclick: () => confirmIn(cell, `Revoke ${k.name} (${k.prefix})? It stops working at once.`,
        "Revoke", { "data-confirm-revoke": k.id }, async () => {
          await api("DELETE", `/api/v1/service-accounts/${a.id}/keys/${k.id}/`);
          say(`${k.name} (${k.prefix}) revoked.`, "ok");
          await load();
        }, revoke),
    }, "Revoke"));
    if (k.status === "active") revoke();
    return el("tr", { "data-key-id": k.id },
      el("td", {}, k.name),
      el("td", {}, el("code", {}, k.prefix)),
      el("td", {}, el("span", { class: `badge ${k.status === "active" ? "active" : "inactive"}` }, k.status)),
      el("td", {}, k.expires_at ? when(k.expires_at) : "never"),
      el("td", {}, k.last_used_at ? when(k.last_used_at) : "not yet"),
      cell);
  });
  $("#key-list tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { class: "empty", colspan: 6 }, a.is_active ? "No key yet." : "Deactivated: activate it to give it a key."))]));
  if (scroll) $("#keys").scrollIntoView({ block: "start" });
}

async function createKey(event) {
  event.preventDefault();
  if (!open) return;
  await act($("#key-submit"), async () => {
    const days = $("#key-expiry").value;
    const scopes = $("#key-scopes").value.split(/\s+/).filter(Boolean);
    const request = { name: $("#key-name").value.trim(), expires_in_days: days ? Number(days) : null };
    if (scopes.length) request.scopes = scopes;
    const allowed = $("#key-allowed-ips").value.split(",").map((a) => a.trim()).filter(Boolean);
    if (allowed.length) request.allowed_ips = allowed;
    const made = await api("POST", `/api/v1/service-accounts/${open.id}/keys/`, request);
    $("#key-form").reset();
    clearFieldErrors($("#key-form"));
    $("#new-key-value").textContent = made.key;
    $("#new-key").hidden = false;
    say(`Key ${made.name} (${made.prefix}) made for ${open.name}.`, "ok");
    await load();
    $("#new-key").hidden = false;
    $("#copy").focus();
  }, $("#key-message"));
}

if (await requireSession()) {
  $("#account-form").addEventListener("submit", save);
  $("#cancel-edit").addEventListener("click", stopEditing);
  $("#key-form").addEventListener("submit", createKey);
  $("#keys-close").addEventListener("click", closeKeys);
  $("#copy").addEventListener("click", () => copyText($("#new-key-value").textContent, $("#new-key-value"), $("#copy")));
  act(null, async () => {
    await refreshUser();
    if (adminOnly("Service accounts")) return;
    await load();
    resumeFields();
  });
}

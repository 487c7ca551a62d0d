// /settings/security/sso (owner and administrators): the organization's sign-in providers.
// Secrets are write-only: left empty on an edit, the stored one is kept.
import {
  $,
  act,
  adminOnly,
  allPages,
  api,
  clearFieldErrors,
  confirmIn,
  el,
  refreshUser,
  requireSession,
  say,
} from "./common.js";

let editing = null; // the provider being edited, or null when adding

const TEXT_FIELDS = {
  oidc: ["issuer", "client_id", "groups_claim"],
  ldap: ["url", "bind_dn", "user_base", "user_filter", "group_attribute", "sync_interval"],
};
const SECRET = { oidc: "client_secret", ldap: "bind_password" };

function showKind() {
  const kind = $("#kind").value;
  $("#oidc-fields").hidden = kind !== "oidc";
  $("#ldap-fields").hidden = kind !== "ldap";
}

function mappingText(mapping) {
  return mapping.map((m) => `${m.group} = ${m.role}`).join("\n");
}

/** "group = role" lines; a line without " = " is sent as it is, for the server to name. */
function mappingFrom(text) {
  return text.split("\n").map((l) => l.trim()).filter(Boolean).map((line) => {
    const at = line.lastIndexOf("=");
    return at < 0 ? { group: line, role: "" } : { group: line.slice(0, at).trim(), role: line.slice(at + 1).trim() };
  });
}

function body() {
  const kind = $("#kind").value;
  const out = {
    name: $("#name").value.trim(),
    email_domains: $("#email_domains").value.split(",").map((d) => d.trim()).filter(Boolean),
    role_mapping: mappingFrom($("#role_mapping").value),
    default_role: $("#default_role").value || null,
    enabled: $("#enabled").checked,
    jit_provisioning: $("#jit_provisioning").checked,
    enforce: $("#enforce").checked,
  };
  if (!editing) out.kind = kind;
  for (const f of TEXT_FIELDS[kind]) out[f] = $(`#${f}`).value.trim();
  if (kind === "oidc") out.scopes = $("#scopes").value.split(/\s+/).filter(Boolean);
  if (kind === "ldap") {
    out.start_tls = $("#start_tls").checked;
    out.nested_groups = $("#nested_groups").checked;
  }
  const secret = $(`#${SECRET[kind]}`).value;
  if (secret) out[SECRET[kind]] = secret;
  return out;
}

function edit(p) {
  editing = p;
  $("#form-title").textContent = `Edit ${p.name}`;
  $("#save").textContent = "Save changes";
  $("#cancel-edit").hidden = false;
  $("#kind").value = p.kind;
  $("#kind").disabled = true;
  showKind();
  $("#name").value = p.name;
  $("#email_domains").value = p.email_domains.join(", ");
  for (const f of TEXT_FIELDS[p.kind]) $(`#${f}`).value = p[f] ?? "";
  if (p.kind === "oidc") $("#scopes").value = p.scopes.join(" ");
  if (p.kind === "ldap") {
    $("#start_tls").checked = p.start_tls;
    $("#nested_groups").checked = p.nested_groups;
  }
  const secret = $(`#${SECRET[p.kind]}`);
  secret.value = "";
  secret.placeholder = "stored: leave empty to keep it";
  $("#role_mapping").value = mappingText(p.role_mapping);
  $("#default_role").value = p.default_role || "";
  $("#enabled").checked = p.enabled;
  $("#jit_provisioning").checked = p.jit_provisioning;
  $("#enforce").checked = p.enforce;
  $("#provider-form").scrollIntoView({ block: "start" });
  $("#name").focus();
}

function stopEditing() {
  editing = null;
  $("#provider-form").reset();
  clearFieldErrors($("#provider-form"));
  say("", "error", $("#form-message"));
  $("#form-title").textContent = "Add a provider";
  $("#save").textContent = "Add provider";
  $("#cancel-edit").hidden = true;
  $("#kind").disabled = false;
  for (const f of Object.values(SECRET)) $(`#${f}`).placeholder = "";
  showKind();
}

async function save(event) {
  event.preventDefault();
  await act($("#save"), async () => {
    const saved = editing
      ? await api("PATCH", `/api/v1/organization/sso-providers/${editing.id}/`, body())
      : await api("POST", "/api/v1/organization/sso-providers/", body());
    stopEditing();
    say(`${saved.name} saved.${saved.kind === "oidc" ? ` Its sign-in starts at ${saved.start_url}` : ""}`, "ok");
    await load();
  }, $("#form-message"));
}

function syncReport(p, report) {
  const parts = [
    `${report.deactivated.length} to deactivate${report.deactivated.length ? ` (${report.deactivated.join(", ")})` : ""}`,
    `${report.role_changed.length} role change${report.role_changed.length === 1 ? "" : "s"}${report.role_changed.length ? ` (${report.role_changed.map((c) => `${c.email}: ${c.from} → ${c.to}`).join(", ")})` : ""}`,
    `${report.unchanged} unchanged`,
  ];
  return `${report.dry_run ? "Dry run of" : "Synced"} ${p.name}: ${parts.join("; ")}.${report.dry_run ? " Nothing was changed." : ""}`;
}

function actions(cell, p) {
  const buttons = [el("button", { class: "secondary", "data-edit": p.id, onclick: () => edit(p) }, "Edit")];
  if (p.kind === "ldap") {
    for (const dry of [true, false]) {
      buttons.push(el("button", {
        class: "secondary",
        [dry ? "data-dry-run" : "data-sync"]: p.id,
        onclick: (e) => act(e.target, async () => {
          const report = await api("POST", `/api/v1/organization/sso-providers/${p.id}/sync/?dry_run=${dry}`);
          say(syncReport(p, report), "ok");
          if (!dry) await load();
        }),
      }, dry ? "Dry run" : "Sync now"));
    }
  }
  buttons.push(el("button", {
    class: "danger",
    "data-delete": p.id,
    onclick: () => confirmIn(cell,
      `Remove ${p.name}? Its users keep their accounts and roles, but cannot sign in until an administrator gives them a password.`,
      "Remove", { "data-confirm-delete": p.id }, async () => {
        await api("DELETE", `/api/v1/organization/sso-providers/${p.id}/`);
        if (editing && editing.id === p.id) stopEditing();
        say(`${p.name} removed.`, "ok");
        await load();
      }, () => actions(cell, p)),
  }, "Remove"));
  cell.replaceChildren(...buttons.flatMap((b) => [b, " "]));
}

async function load() {
  const providers = await allPages("/api/v1/organization/sso-providers/");
  const rows = providers.map((p) => {
    const cell = el("td", { class: "row-actions" });
    actions(cell, p);
    const status = [el("span", { class: `badge ${p.enabled ? "active" : "inactive"}` }, p.enabled ? "enabled" : "disabled")];
    if (p.enforce) status.push(" ", el("span", { class: "badge" }, "required"));
    return el("tr", { "data-provider-id": p.id },
      el("td", {}, p.name),
      el("td", {}, p.kind === "oidc" ? "OpenID Connect" : "LDAP"),
      el("td", {}, p.email_domains.join(", ")),
      el("td", {}, ...status),
      cell);
  });
  $("#providers tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { class: "empty", colspan: 5 }, "No provider yet: everyone signs in with a password."))]));
}

if (await requireSession()) {
  $("#redirect-uri").textContent = `${location.origin}/api/auth/sso/callback/`;
  $("#kind").addEventListener("change", showKind);
  $("#provider-form").addEventListener("submit", save);
  $("#cancel-edit").addEventListener("click", stopEditing);
  act(null, async () => {
    await refreshUser();
    if (adminOnly("SSO providers")) return;
    showKind();
    await load();
  });
}

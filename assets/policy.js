// /settings/security/policy (administrators read, the owner changes): the organization's
// security policy, and what breaks it today.
import { $, act, adminOnly, api, el, refreshUser, requireSession, say, Session } from "./common.js";

/** What each rule means, in the words of the form. */
const RULES = {
  require_mfa: "two-factor authentication is required and not set up",
  key_max_lifetime_days: "lives longer than the policy allows",
  allow_never_expiring_keys: "never expires",
  require_ip_allowlist_for_write_scopes: "can change things from any address",
};

function show(policy) {
  $("#require_mfa").value = policy.require_mfa;
  $("#key_max_lifetime_days").value = policy.key_max_lifetime_days ? String(policy.key_max_lifetime_days) : "";
  $("#allow_never_expiring_keys").checked = policy.allow_never_expiring_keys;
  $("#require_ip_allowlist_for_write_scopes").checked = policy.require_ip_allowlist_for_write_scopes;
  $("#session_max_lifetime").value = policy.session_max_lifetime || "";
}

function body() {
  const days = $("#key_max_lifetime_days").value;
  const lifetime = $("#session_max_lifetime").value.trim();
  return {
    require_mfa: $("#require_mfa").value,
    key_max_lifetime_days: days ? Number(days) : null,
    allow_never_expiring_keys: $("#allow_never_expiring_keys").checked,
    require_ip_allowlist_for_write_scopes: $("#require_ip_allowlist_for_write_scopes").checked,
    session_max_lifetime: lifetime || null,
  };
}

async function loadViolations() {
  const found = await api("GET", "/api/v1/organization/security-policy/violations/");
  const keys = found.keys.map((k) => el("tr", { "data-violation-key": k.id },
    el("td", {}, el("code", {}, k.prefix)),
    el("td", {}, k.service_account ? `service account ${k.owner}` : k.owner),
    el("td", {}, RULES[k.rule] || k.rule)));
  const users = found.users.map((u) => el("tr", { "data-violation-user": u.id },
    el("td", {}, u.email),
    el("td", {}, RULES[u.rule] || u.rule)));
  $("#violating-keys tbody").replaceChildren(...keys);
  $("#violating-users tbody").replaceChildren(...users);
  $("#violating-keys").hidden = !keys.length;
  $("#violating-users").hidden = !users.length;
  $("#all-clear").hidden = Boolean(keys.length || users.length);
}

async function save(event) {
  event.preventDefault();
  await act($("#save"), async () => {
    show(await api("PATCH", "/api/v1/organization/security-policy/", body()));
    say("Policy saved. It applies to new sessions and keys; what breaks it is listed below.", "ok");
    await loadViolations();
  }, $("#form-message"));
}

if (await requireSession()) {
  $("#policy-form").addEventListener("submit", save);
  act(null, async () => {
    await refreshUser();
    if (adminOnly("Security policy")) return;
    const owner = Session.user && Session.user.role === "owner";
    for (const field of $("#policy-form").querySelectorAll("select, input, button")) field.disabled = !owner;
    $("#owner-only").hidden = owner;
    show(await api("GET", "/api/v1/organization/security-policy/"));
    await loadViolations();
  });
}

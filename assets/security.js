// /settings/security: two-factor authentication (authenticator app and passkeys), password
// change, sessions.
import {
  $,
  act,
  api,
  ApiError,
  clearFieldErrors,
  copyText,
  download,
  el,
  logout,
  markField,
  refreshUser,
  requireSession,
  say,
  Session,
  when,
} from "./common.js";
import { createPasskey, passkeyProblem, passkeysSupported } from "./passkeys.js";

let passkeyToRemove = null;

/** Shows the account's second factors as the server has them, with the recovery codes left. */
async function showMfa() {
  const mfa = await api("GET", "/api/auth/mfa/");
  const totp = mfa.methods.includes("totp");
  const passkey = mfa.methods.includes("webauthn");
  const left = mfa.recovery_codes_left;
  const codes = left === 1 ? "1 recovery code is left." : `${left} recovery codes are left.`;
  let status = "Two-factor authentication is off.";
  if (totp && passkey) {
    status = `Two-factor authentication is on: signing in asks for a passkey or a code from your authenticator app. ${codes}`;
  } else if (totp) {
    status = `Two-factor authentication is on: signing in asks for a code from your authenticator app. ${codes}`;
  } else if (passkey) {
    status = `Two-factor authentication is on with your passkeys. ${codes}`
      + (left === 0 ? " Make recovery codes in case you lose them." : "");
  }
  $("#mfa-status").textContent = status;
  $("#mfa-start").textContent = passkey ? "Also use an authenticator app" : "Set up two-factor authentication";
  $("#mfa-off").hidden = totp;
  $("#mfa-on").hidden = !(totp || passkey);
  $("#mfa-disable-open").hidden = !totp;
  $("#mfa-disable-open").textContent = passkey ? "Stop using the authenticator app…" : "Turn off two-factor authentication…";
  $("#renew-code-field").hidden = !totp;
  $("#renew-with-code").hidden = !totp;
  $("#mfa-disable").hidden = true;
  $("#mfa-renew").hidden = true;
  $("#mfa-enrol").hidden = true;
}

/** The account's passkeys, each with its remove button. */
async function showPasskeys() {
  const page = await api("GET", "/api/auth/mfa/webauthn/?page_size=100");
  $("#passkeys-status").textContent = page.count
    ? "Signing in asks for one of these after your password; those marked \"yes\" also sign you in on their own."
    : "A passkey is a security key or this device's screen lock: it confirms it is you, and cannot be phished.";
  $("#passkey-list").hidden = page.count === 0;
  $("#passkey-list tbody").replaceChildren(...page.results.map((p) => el("tr", { "data-passkey-id": p.id },
    el("td", {}, p.name),
    el("td", {}, p.passwordless ? "yes" : "no"),
    el("td", {}, when(p.created_at)),
    el("td", {}, p.last_used_at ? when(p.last_used_at) : "never"),
    el("td", {}, el("button", {
      class: "danger",
      "data-remove-passkey": p.id,
      onclick: () => askToRemove(p),
    }, "Remove…")),
  )));
  if (!passkeysSupported()) {
    $("#passkey-add").hidden = true;
    $("#passkeys-status").textContent += " This browser cannot make passkeys.";
  }
}

function askToRemove(passkey) {
  passkeyToRemove = passkey;
  $("#passkey-remove-question").textContent =
    `Remove the passkey "${passkey.name}"? It will not sign you in again. Confirm with your password.`;
  $("#passkey-add").hidden = true;
  $("#passkey-remove").hidden = false;
  $("#passkey-remove-password").focus();
}

function cancelRemoval() {
  passkeyToRemove = null;
  $("#passkey-remove").reset();
  clearFieldErrors($("#passkey-remove"));
  $("#passkey-remove").hidden = true;
  $("#passkey-add").hidden = !passkeysSupported();
}

async function removePasskey(event) {
  event.preventDefault();
  const passkey = passkeyToRemove;
  if (!passkey) return;
  await act($("#passkey-remove-submit"), async () => {
    await api("DELETE", `/api/auth/mfa/webauthn/${passkey.id}/`, {
      password: $("#passkey-remove-password").value,
    });
    cancelRemoval();
    say(`The passkey "${passkey.name}" was removed.`, "ok");
    await showMfa();
    await showPasskeys();
    await refreshUser();
  }, $("#passkey-remove-message"));
}

async function addPasskey(event) {
  event.preventDefault();
  const box = $("#passkey-message");
  clearFieldErrors($("#passkey-add"));
  const name = $("#passkey-name").value.trim();
  if (!name) {
    markField($("#passkey-name"), "Give the passkey a name you will recognise.");
    return;
  }
  await act($("#passkey-add-submit"), async () => {
    const body = { passwordless: $("#passkey-passwordless").checked };
    if ($("#passkey-password").value) body.password = $("#passkey-password").value;
    const begun = await api("POST", "/api/auth/mfa/webauthn/register/begin/", body);
    let credential;
    try {
      credential = await createPasskey(begun.publicKey);
    } catch (e) {
      throw new ApiError(400, { message: passkeyProblem(e) || String(e.message || e) });
    }
    const made = await api("POST", "/api/auth/mfa/webauthn/register/finish/", {
      challenge_id: begun.challenge_id,
      name,
      credential,
    });
    $("#passkey-add").reset();
    say(`The passkey "${made.name}" was added.`, "ok");
    await showMfa();
    await showPasskeys();
    const me = await refreshUser();
    if (!$("#mfa-required").hidden && !me.mfa_enrollment_required) {
      $("#mfa-required").hidden = true;
      await loadSessions();
    }
  }, box);
}

async function startEnrolment(event) {
  await act(event.target, async () => {
    const setup = await api("POST", "/api/auth/mfa/totp/setup/");
    $("#mfa-qr").src = `data:image/png;base64,${setup.qr_png_base64}`;
    $("#mfa-secret").textContent = setup.secret;
    $("#mfa-off").hidden = true;
    $("#mfa-enrol").hidden = false;
    $("#mfa-code").focus();
  });
}

async function confirmEnrolment(event) {
  event.preventDefault();
  await act($("#mfa-confirm-submit"), async () => {
    const answer = await api("POST", "/api/auth/mfa/totp/confirm/", { code: $("#mfa-code").value.trim() });
    $("#mfa-code").value = "";
    $("#mfa-secret").textContent = "";
    $("#mfa-qr").removeAttribute("src");
    $("#recovery-codes").replaceChildren(...answer.recovery_codes.map((c) => el("li", {}, c)));
    $("#mfa-codes").hidden = false;
    await showMfa();
    const me = await refreshUser();
    // Required by the organization: the rest of the console opens now.
    if (!$("#mfa-required").hidden && !me.mfa_enrollment_required) {
      $("#mfa-required").hidden = true;
      await loadSessions();
    }
  }, $("#mfa-confirm-message"));
}

function codesText() {
  return [...document.querySelectorAll("#recovery-codes li")].map((li) => li.textContent).join("\n") + "\n";
}

function copyCodes() {
  return copyText(codesText(), $("#recovery-codes"), $("#mfa-codes-copy"));
}

function downloadCodes() {
  download(new Blob([
    `clariBI recovery codes for ${Session.user ? Session.user.email : "your account"}\n`,
    "Each code works once, instead of a code from the authenticator app.\n\n",
    codesText(),
  ], { type: "text/plain" }), "claribi-recovery-codes.txt");
}

async function renewCodes(event) {
  event.preventDefault();
  await act($("#mfa-renew-submit"), async () => {
    const body = { password: $("#renew-password").value };
    if (!$("#renew-code-field").hidden) body.code = $("#renew-code").value.trim();
    const answer = await api("POST", "/api/auth/mfa/recovery-codes/", body);
    $("#mfa-renew").reset();
    $("#recovery-codes").replaceChildren(...answer.recovery_codes.map((c) => el("li", {}, c)));
    $("#mfa-codes").hidden = false;
    await showMfa();
    say("New recovery codes made: the earlier ones no longer work.", "ok");
  }, $("#mfa-renew-message"));
}

async function disableMfa(event) {
  event.preventDefault();
  await act($("#mfa-disable-submit"), async () => {
    await api("POST", "/api/auth/mfa/totp/disable/", {
      password: $("#disable-password").value,
      code: $("#disable-code").value.trim(),
    });
    $("#mfa-disable").reset();
    await showMfa();
    say("Two-factor authentication is off.", "ok");
    await refreshUser();
  }, $("#mfa-disable-message"));
}

async function changePassword(event) {
  event.preventDefault();
  const box = $("#password-message");
  clearFieldErrors($("#password"));
  if ($("#new-password").value !== $("#repeat-password").value) {
    markField($("#repeat-password"), "differs from the new password");
    say("Please correct the fields marked below.", "error", box);
    $("#repeat-password").scrollIntoView({ block: "center" });
    return;
  }
  await act($("#password-submit"), async () => {
    await api("POST", "/api/auth/password/", {
      current_password: $("#current-password").value,
      new_password: $("#new-password").value,
    });
    $("#password").reset();
    $("#first-password").hidden = true;
    $("#temporary-password").hidden = true;
    sessionStorage.removeItem("claribi.change-password");
    say("Password changed. Your other sessions were signed out.", "ok", box);
    await refreshUser();
    await showMfa();
    await loadSessions();
  }, box);
}

async function loadSessions() {
  const page = await api("GET", "/api/auth/sessions/?page_size=100");
  $("#sessions tbody").replaceChildren(...page.results.map((s) => el("tr", { "data-session-id": s.id },
    el("td", {}, when(s.created_at), s.current ? [" ", el("span", { class: "badge current" }, "this session")] : null),
    el("td", {}, when(s.last_seen_at)),
    el("td", {}, s.ip || "—"),
    el("td", { class: "muted" }, s.user_agent || "—"),
    el("td", {}, s.current
      ? el("button", { class: "secondary", onclick: logout }, "Sign out")
      : el("button", { class: "danger", "data-revoke-session": s.id, onclick: (e) => act(e.target, async () => {
        await api("DELETE", `/api/auth/sessions/${s.id}/`);
        say("Session signed out.", "ok");
        await loadSessions();
      }) }, "Sign out")),
  )));
}

if (await requireSession()) {
  $("#mfa-start").addEventListener("click", startEnrolment);
  $("#mfa-confirm").addEventListener("submit", confirmEnrolment);
  $("#mfa-disable").addEventListener("submit", disableMfa);
  $("#mfa-codes-copy").addEventListener("click", copyCodes);
  $("#mfa-codes-download").addEventListener("click", downloadCodes);
  $("#mfa-renew").addEventListener("submit", renewCodes);
  $("#mfa-renew-open").addEventListener("click", () => {
    $("#mfa-on").hidden = true;
    $("#mfa-renew").hidden = false;
    $("#renew-password").focus();
  });
  $("#mfa-renew-cancel").addEventListener("click", () => {
    $("#mfa-renew").reset();
    clearFieldErrors($("#mfa-renew"));
    $("#mfa-renew").hidden = true;
    $("#mfa-on").hidden = false;
  });
  $("#mfa-disable-open").addEventListener("click", () => {
    $("#mfa-on").hidden = true;
    $("#mfa-disable").hidden = false;
    $("#disable-password").focus();
  });
  $("#mfa-disable-cancel").addEventListener("click", () => {
    $("#mfa-disable").reset();
    clearFieldErrors($("#mfa-disable"));
    $("#mfa-disable").hidden = true;
    $("#mfa-on").hidden = false;
  });
  $("#first-password").hidden = sessionStorage.getItem("claribi.change-password") !== "1";
  $("#temporary-password").hidden = sessionStorage.getItem("claribi.change-password") !== "required";
  $("#mfa-codes-done").addEventListener("click", () => {
    $("#recovery-codes").replaceChildren();
    $("#mfa-codes").hidden = true;
  });
  $("#password").addEventListener("submit", changePassword);
  $("#passkey-add").addEventListener("submit", addPasskey);
  $("#passkey-remove").addEventListener("submit", removePasskey);
  $("#passkey-remove-cancel").addEventListener("click", cancelRemoval);
  act(null, async () => {
    const me = await refreshUser();
    // A temporary password opens only its change: the rest waits for it.
    if (me.password_change_required) {
      $("#temporary-password").hidden = false;
      $("#current-password").focus();
      return;
    }
    // Two-factor required by the organization and not set up: enrolment first.
    if (me.mfa_enrollment_required) {
      $("#mfa-required").hidden = false;
      await showMfa();
      await showPasskeys();
      return;
    }
    await showMfa();
    await showPasskeys();
    await loadSessions();
  });
}

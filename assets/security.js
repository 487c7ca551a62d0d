// /settings/security: two-factor authentication, password change, sessions.
import {
  $,
  act,
  api,
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

/** Shows the account's second factor as the server has it, with the recovery codes left. */
async function showMfa() {
  const mfa = await api("GET", "/api/auth/mfa/");
  const enabled = mfa.methods.includes("totp");
  const left = mfa.recovery_codes_left;
  $("#mfa-status").textContent = enabled
    ? "Two-factor authentication is on: signing in asks for a code from your authenticator app. "
      + (left === 1 ? "1 recovery code is left." : `${left} recovery codes are left.`)
    : "Two-factor authentication is off.";
  $("#mfa-off").hidden = enabled;
  $("#mfa-on").hidden = !enabled;
  $("#mfa-disable").hidden = true;
  $("#mfa-renew").hidden = true;
  $("#mfa-enrol").hidden = true;
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
    const answer = await api("POST", "/api/auth/mfa/recovery-codes/", {
      password: $("#renew-password").value,
      code: $("#renew-code").value.trim(),
    });
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

if (requireSession()) {
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
      return;
    }
    await showMfa();
    await loadSessions();
  });
}

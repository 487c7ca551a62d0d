// /login: email and password, then the TOTP or a recovery code when the account asks for one.
"use strict";

const KEYS_PAGE = "/settings/developer/api-keys";
let recovery = false;

async function alreadySignedIn() {
  if (!Session.access) return;
  try {
    Session.save({ user: await api("GET", "/api/auth/me/") });
    location.replace(KEYS_PAGE);
  } catch { Session.clear(); }
}

function askForCode() {
  $("#credentials").hidden = true;
  $("#second-factor").hidden = false;
  $("#code").focus();
}

function toggleRecovery() {
  recovery = !recovery;
  $("#code-label").textContent = recovery ? "Recovery code" : "Authentication code";
  $("#factor-hint").textContent = recovery
    ? "Enter one of the recovery codes you saved when you turned on two-factor authentication."
    : "Enter the 6-digit code from your authenticator app.";
  $("#use-recovery").textContent = recovery ? "Use an authentication code instead" : "Use a recovery code instead";
  $("#code").value = "";
  $("#code").focus();
}

async function signIn(event) {
  event.preventDefault();
  const body = { email: $("#email").value.trim(), password: $("#password").value };
  const code = $("#code").value.trim();
  if (!$("#second-factor").hidden) {
    if (!code) return say("Enter the code.");
    body[recovery ? "recovery_code" : "totp_code"] = code;
  }
  await act($("#submit"), async () => {
    try {
      const answer = await api("POST", "/api/auth/login/", body);
      Session.save(answer);
      location.assign(KEYS_PAGE);
    } catch (e) {
      if (e.code === "mfa_required") {
        askForCode();
        return;
      }
      if (e.code === "mfa_invalid") $("#code").select();
      throw e;
    }
  });
}

$("#login").addEventListener("submit", signIn);
$("#use-recovery").addEventListener("click", toggleRecovery);
alreadySignedIn();

// /login: email and password, then the TOTP or a recovery code when the account asks for one.
"use strict";

const HOME = "/";
const SECURITY_PAGE = "/settings/security";
let recovery = false;

async function alreadySignedIn() {
  if (!Session.access) return;
  try {
    Session.save({ user: await api("GET", "/api/auth/me/") });
    location.replace(HOME);
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
      // A password someone else chose (the generated first owner's, an administrator's): ask
      // for one of the user's own first.
      if (answer.password_change_suggested) {
        sessionStorage.setItem("claribi.change-password", "1");
        location.assign(`${SECURITY_PAGE}#password`);
      } else {
        location.assign(HOME);
      }
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

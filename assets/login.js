// /login: the email first, then what signs that address in: its organization's identity
// provider ("Sign in with ..."), or the password (checked here or by the organization's
// directory), then the second factor when the account asks for one: a passkey, the TOTP or a
// recovery code. A passkey registered for it signs in without the email or password. An
// identity provider's sign-in comes back here with a one-time code (?sso=) traded for the
// session.
import { $, act, api, ApiError, askOtherTabs, el, errorText, say, Session } from "./common.js";
import { passkeyProblem, passkeysSupported, usePasskey } from "./passkeys.js";

const HOME = "/";
const SECURITY_PAGE = "/settings/security";
let recovery = false;
// The second factors the account offered (`mfa_required`), and its passkey ceremony, used once.
let methods = [];
let ceremony = null;

/** Where to go once signed in: back to the page whose session ended (`?next=`), parsed as the
 *  browser will and kept only when it is a page of this console (never another site, whatever
 *  slashes, tabs or escapes it hides), else the overview. */
function destination() {
  const next = new URLSearchParams(location.search).get("next");
  if (!next || !next.startsWith("/")) return HOME;
  let target;
  try { target = new URL(next, location.origin); } catch { return HOME; }
  if (target.origin !== location.origin || target.pathname.startsWith("/login")) return HOME;
  return target.pathname + target.search + target.hash;
}

/** Signed in already, in this tab or another open one: straight on. */
async function alreadySignedIn() {
  if (!(await askOtherTabs())) return;
  try {
    Session.save({ user: await api("GET", "/api/auth/me/") });
    location.replace(destination());
  } catch { Session.clear(); }
}

const SSO_ERRORS = {
  sso_failed: "Signing in with your identity provider did not work. Try again, or ask your administrator.",
  sso_not_allowed: "Your identity provider signed you in, but gives you no access to clariBI. Ask your administrator.",
};

/** Back from an identity provider: trade the one-time code for a session, or say why not. */
async function finishProviderSignIn() {
  const params = new URLSearchParams(location.search);
  const code = params.get("sso");
  const error = params.get("sso_error");
  if (!code && !error) return false;
  // Neither the code nor the error stays in the address bar or the history.
  history.replaceState(null, "", "/login");
  if (error) {
    say(SSO_ERRORS[error] || SSO_ERRORS.sso_failed);
    return false;
  }
  try {
    Session.save(await api("POST", "/api/auth/sso/exchange/", { code }));
    location.replace(HOME);
    return true;
  } catch (e) {
    say(e.status === 400
      ? "That sign-in has expired or was already used. Sign in again."
      : errorText(e));
    return false;
  }
}

function atPasswordStep() {
  return !$("#password-step").hidden;
}

/** After the email: the providers that serve its domain, and the password. */
function showSignInWays(serving) {
  const withProvider = serving.filter((p) => p.kind === "oidc" && p.start_url);
  const directory = serving.find((p) => p.kind === "ldap");
  $("#provider-buttons").replaceChildren(...withProvider.map((p) =>
    el("a", { class: "button provider", href: p.start_url }, `Sign in with ${p.name}`)));
  $("#providers").hidden = withProvider.length === 0;
  $("#directory-hint").hidden = !directory;
  $("#directory-hint").textContent = directory
    ? `Use your ${directory.name} password: your organization's directory checks it.`
    : "";
  $("#email").readOnly = true;
  $("#email-next").hidden = true;
  $("#password-step").hidden = false;
  $("#submit").textContent = "Sign in";
  if (withProvider.length) $(".provider").focus();
  else $("#password").focus();
}

function changeEmail() {
  $("#email").readOnly = false;
  $("#email-next").hidden = false;
  $("#password-step").hidden = true;
  $("#password").value = "";
  $("#submit").textContent = "Continue";
  say("");
  $("#email").focus();
}

async function lookUp() {
  const email = $("#email").value.trim();
  if (!email) return say("Enter your email address.");
  await act($("#submit"), async () => {
    let serving = [];
    try {
      serving = await api("GET", `/api/auth/sso/providers/?email=${encodeURIComponent(email)}`);
    } catch (e) {
      if (e.status === 400) throw new ApiError(400, { message: "Enter a valid email address." });
      // Providers cannot be asked: the password still works.
    }
    showSignInWays(serving);
  });
}

/** The second factor the account asks for: its passkey first, else the code. */
function askForSecondFactor(body) {
  methods = body.methods || ["totp", "recovery_code"];
  ceremony = body.webauthn || null;
  const passkey = methods.includes("webauthn") && passkeysSupported();
  const totp = methods.includes("totp");
  $("#credentials").hidden = true;
  $("#second-factor").hidden = false;
  $("#passkey-factor").hidden = !passkey;
  $("#use-recovery").hidden = !methods.includes("recovery_code");
  if (!totp && !recovery) {
    $("#code-entry").hidden = true;
    $("#submit").hidden = true;
  }
  if (passkey) $("#use-passkey").focus();
  else if (!$("#code-entry").hidden) $("#code").focus();
}

function toggleRecovery() {
  recovery = !recovery;
  const withCode = recovery || methods.includes("totp");
  $("#code-entry").hidden = !withCode;
  $("#submit").hidden = !withCode;
  $("#code-label").textContent = recovery ? "Recovery code" : "Authentication code";
  $("#factor-hint").textContent = recovery
    ? "Enter one of the recovery codes you saved when you turned on two-factor authentication."
    : "Enter the 6-digit code from your authenticator app.";
  $("#use-recovery").textContent = !recovery ? "Use a recovery code instead"
    : methods.includes("totp") ? "Use an authentication code instead" : "Back";
  $("#code").value = "";
  $("#code").focus();
}

async function signIn(event) {
  event.preventDefault();
  if (!atPasswordStep()) return lookUp();
  const body = { email: $("#email").value.trim(), password: $("#password").value };
  const code = $("#code").value.trim();
  if (!$("#second-factor").hidden) {
    if (!code) return say("Enter the code.");
    body[recovery ? "recovery_code" : "totp_code"] = code;
  }
  await act($("#submit"), () => logIn(body));
}

/** Where a new session goes first. */
function signedIn(answer) {
  Session.save(answer);
  // A password someone else chose (the generated first owner's, an administrator's): ask
  // for one of the user's own first; a temporary one opens nothing else until then.
  if (answer.password_change_required || answer.password_change_suggested) {
    sessionStorage.setItem("claribi.change-password",
      answer.password_change_required ? "required" : "1");
    location.assign(`${SECURITY_PAGE}#password`);
  } else if (answer.mfa_enrollment_required) {
    location.assign(`${SECURITY_PAGE}#mfa`);
  } else {
    location.assign(destination());
  }
}

async function logIn(body) {
  try {
    signedIn(await api("POST", "/api/auth/login/", body));
  } catch (e) {
    if (e.code === "mfa_required") {
      askForSecondFactor(e.body);
      return;
    }
    if (e.code === "mfa_invalid") $("#code").select();
    if (e.code === "sso_required") {
      $("#password").value = "";
      throw new ApiError(403, {
        message: "Your organization signs you in through its identity provider: use the Sign in with button above.",
      });
    }
    throw e;
  }
}

/** This device's answer to a passkey ceremony; its refusal said plainly. */
async function answerWithPasskey(publicKey) {
  try {
    return await usePasskey(publicKey);
  } catch (e) {
    throw new ApiError(400, { message: passkeyProblem(e) || errorText(e) });
  }
}

/** The passkey as the second factor: answers the login's ceremony (a new one if it was used). */
async function confirmWithPasskey(event) {
  const credentials = { email: $("#email").value.trim(), password: $("#password").value };
  await act(event.target, async () => {
    if (!ceremony) {
      try {
        await api("POST", "/api/auth/login/", credentials);
      } catch (e) {
        if (e.code !== "mfa_required") throw e;
        ceremony = e.body.webauthn || null;
      }
      if (!ceremony) throw new ApiError(409, { message: "This account has no passkey to use any more." });
    }
    const { challenge_id, publicKey } = ceremony;
    ceremony = null;
    const credential = await answerWithPasskey(publicKey);
    try {
      await logIn({ ...credentials, webauthn: { challenge_id, credential } });
    } catch (e) {
      if (e.code === "mfa_invalid") {
        throw new ApiError(401, { message: "That passkey was not accepted for this account. Try again, or use another way." });
      }
      throw e;
    }
  });
}

/** A sign-in with a passkey alone (registered for sign-in without a password). */
async function signInWithPasskey(event) {
  await act(event.target, async () => {
    const { challenge_id, publicKey } = await api("POST", "/api/auth/passkey/begin/");
    const credential = await answerWithPasskey(publicKey);
    try {
      signedIn(await api("POST", "/api/auth/passkey/finish/", { challenge_id, credential }));
    } catch (e) {
      if (e.code === "invalid_credentials") {
        throw new ApiError(401, {
          message: "That passkey does not sign anyone in here. Use your email and password, then add a passkey for "
            + "signing in under Settings > Security.",
        });
      }
      throw e;
    }
  });
}

$("#login").addEventListener("submit", signIn);
$("#use-passkey").addEventListener("click", confirmWithPasskey);
$("#passkey-sign-in").addEventListener("click", signInWithPasskey);
$("#passkey-way").hidden = !passkeysSupported();
$("#use-recovery").addEventListener("click", toggleRecovery);
$("#change-email").addEventListener("click", changeEmail);
if (new URLSearchParams(location.search).get("ended")) {
  say("Your session has ended. Sign in again to go back to where you were: what you had typed is kept.");
}
finishProviderSignIn().then((done) => { if (!done) alreadySignedIn(); });

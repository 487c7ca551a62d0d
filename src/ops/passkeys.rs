//! Passkeys (WebAuthn, contract 10.3): registration in a session, the passkey as the second
//! factor of a password login, and sign-in without a password for passkeys registered for it.
//!
//! webauthn-rs checks every signature, origin, challenge and counter; this module keeps its
//! records in the database. A ceremony's state is stored when it begins and taken (deleted)
//! when it finishes, so any server of a cluster finishes what another began, and none finishes
//! it twice. The relying party is `server.public_url`: its host is the relying party id.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder, WebauthnError,
};

use super::{change, mfa, Actor};
use crate::domain::{now, Id, UnixTime};
use crate::error::ApiError;
use crate::ops::AppState;
use crate::store::audit::Outcome;
use crate::store::feed::Kind;
use crate::store::passkeys::{self, Challenge, Purpose};
use crate::store::users;

/// How long a ceremony may take, begun to finished (the contract's 5 minutes).
pub const CEREMONY: Duration = Duration::from_secs(300);
/// Passkeys one account may hold.
pub const MAX_PER_USER: i64 = 20;
/// What ceremonies may wait at once: what requests, unauthenticated ones above all, can grow.
const BOUNDS: passkeys::Bounds = passkeys::Bounds {
    total: 10_000,
    per_client: 20,
    per_user: 3,
};
/// A session opened longer ago than this asks for the password again before a passkey is
/// added, or recovery codes made without an authenticator app ("sudo mode").
pub const RECENT_SIGN_IN: i64 = 10 * 60;
/// A passkey's name, in characters.
pub const MAX_NAME: usize = 100;

/// The relying party this server is: `server.public_url`'s origin, its host as the id.
fn relying_party(app: &AppState) -> Result<Webauthn, ApiError> {
    let configured = app.config.server.public_url.trim();
    let not_set = || {
        ApiError::Conflict(
            "passkeys need server.public_url (its host is the relying party id): set it in \
             claribi.toml"
                .into(),
        )
    };
    if configured.is_empty() {
        return Err(not_set());
    }
    let url = Url::parse(configured).map_err(|_| not_set())?;
    let origin = Url::parse(&url.origin().ascii_serialization()).map_err(|_| not_set())?;
    let rp_id = origin.host_str().ok_or_else(not_set)?.to_string();
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| b.rp_name("clariBI").timeout(CEREMONY).build())
        .map_err(|e| ApiError::Internal(format!("the relying party {rp_id}: {e}")))
}

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("{what}: {e}"))
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn new_challenge_id() -> String {
    let bytes: [u8; 32] = rand::random();
    base64url(&bytes)
}

fn ceremony_end(at: UnixTime) -> UnixTime {
    at + CEREMONY.as_secs() as i64
}

/// A challenge id from a body: present and of the length this server makes.
pub(crate) fn challenge_field(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 64 {
        return Err(ApiError::field(
            "challenge_id",
            "is required (the challenge_id the begin step answered)",
        ));
    }
    Ok(())
}

/// Stores a ceremony's state: `429` while the client keeps as many waiting as it may, `503`
/// while the most that may wait in all do.
async fn store_ceremony(
    app: &AppState,
    actor: &Actor,
    user_id: Option<Id>,
    purpose: Purpose,
    state: String,
    passwordless: bool,
) -> Result<String, ApiError> {
    let id = new_challenge_id();
    let at = now();
    let stored = id.clone();
    let client_ip = actor.client_ip().map(|ip| ip.to_string());
    let begun = app
        .store
        .write(move |tx| {
            passkeys::begin(
                tx,
                &Challenge {
                    id: &stored,
                    user_id,
                    purpose,
                    state: &state,
                    passwordless,
                    client_ip: client_ip.as_deref(),
                    expires_at: ceremony_end(at),
                },
                at,
                &BOUNDS,
            )
        })
        .await?;
    match begun {
        passkeys::Begun::Stored => Ok(id),
        passkeys::Begun::ClientFull => {
            crate::telemetry::throttled("passkey");
            Err(ApiError::Throttled {
                message: format!(
                    "{} passkey sign-ins from this address wait to be finished; finish or \
                     let them expire first",
                    BOUNDS.per_client
                ),
                retry_after: CEREMONY.as_secs(),
            })
        }
        passkeys::Begun::Full => {
            tracing::warn!(
                ?purpose,
                "{} passkey ceremonies wait already; refusing more",
                BOUNDS.total
            );
            Err(ApiError::Unavailable { retry_after: 30 })
        }
    }
}

/// Whether the caller's session was opened within `RECENT_SIGN_IN` (keys have no session).
pub async fn signed_in_recently(app: &AppState, session_id: Option<Id>) -> Result<bool, ApiError> {
    let Some(sid) = session_id else {
        return Ok(false);
    };
    let session = app
        .store
        .read(move |c| crate::store::sessions::get(c, sid))
        .await?;
    Ok(now() - session.created_at <= RECENT_SIGN_IN)
}

/// Takes (deletes) a ceremony, committed before anything is checked: each is tried once.
async fn take_ceremony(
    app: &AppState,
    id: String,
    purpose: Purpose,
    user_id: Option<Id>,
) -> Result<Option<passkeys::Taken>, ApiError> {
    let at = now();
    Ok(app
        .store
        .write(move |tx| passkeys::take(tx, &id, purpose, user_id, at))
        .await?)
}

/// A registered passkey as the API shows it.
pub struct Registered {
    pub id: Id,
    pub name: String,
    pub passwordless: bool,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

impl From<passkeys::Credential> for Registered {
    fn from(c: passkeys::Credential) -> Self {
        Registered {
            id: c.id,
            name: c.name,
            passwordless: c.passwordless,
            created_at: c.created_at,
            last_used_at: c.last_used_at,
        }
    }
}

/// A ceremony begun: its id and the options the browser passes to `navigator.credentials`.
pub struct Begun {
    pub challenge_id: String,
    pub public_key: Value,
}

/// Begins registering a passkey for `user_id`; `passwordless` asks the authenticator for a
/// discoverable credential with user verification, for sign-in without a password.
pub async fn register_begin(
    app: &AppState,
    actor: &Actor,
    user_id: Id,
    passwordless: bool,
) -> Result<Begun, ApiError> {
    let rp = relying_party(app)?;
    let fresh_handle = Uuid::new_v4().to_string();
    let (user, existing, handle) = app
        .store
        .write(move |tx| {
            let user = users::get(tx, user_id)?;
            let existing = passkeys::of_user(tx, user_id)?;
            let handle = passkeys::set_handle(tx, user_id, &fresh_handle)?;
            Ok((user, existing, handle))
        })
        .await?;
    if passwordless && super::sessions::directory_of(app, &user).await?.is_some() {
        // The directory decides at every sign-in whether the account may still sign in: a
        // passkey alone would not ask it.
        return Err(ApiError::Conflict(
            "your organization's directory checks each of your sign-ins: a passkey can be your \
             second factor, not a sign-in without your password"
                .into(),
        ));
    }
    if existing.len() as i64 >= MAX_PER_USER {
        return Err(ApiError::Conflict(format!(
            "an account holds at most {MAX_PER_USER} passkeys; remove one first"
        )));
    }
    let handle = Uuid::parse_str(&handle).map_err(|e| internal("a stored user handle", e))?;
    let exclude = existing
        .iter()
        .filter_map(|c| serde_json::from_str::<Passkey>(&c.passkey).ok())
        .map(|p| p.cred_id().clone())
        .collect();
    let display = if user.name.is_empty() {
        user.email.clone()
    } else {
        user.name.clone()
    };
    let (options, state) = rp
        .start_passkey_registration(handle, &user.email, &display, Some(exclude))
        .map_err(|e| internal("starting a passkey registration", e))?;
    let mut public_key =
        serde_json::to_value(&options.public_key).map_err(|e| internal("options", e))?;
    if passwordless {
        // Sign-in without a password finds the credential on the authenticator: it must be
        // discoverable (webauthn-rs asks for user verification already).
        public_key["authenticatorSelection"]["residentKey"] = json!("required");
        public_key["authenticatorSelection"]["requireResidentKey"] = json!(true);
    }
    let state = serde_json::to_string(&state).map_err(|e| internal("a registration state", e))?;
    let challenge_id = store_ceremony(
        app,
        actor,
        Some(user_id),
        Purpose::Register,
        state,
        passwordless,
    )
    .await?;
    Ok(Begun {
        challenge_id,
        public_key,
    })
}

/// Finishes a registration begun by the same user: the passkey is stored and MFA is on.
pub async fn register_finish(
    app: &AppState,
    actor: &Actor,
    user_id: Id,
    challenge_id: String,
    name: String,
    credential: Value,
) -> Result<Registered, ApiError> {
    challenge_field(&challenge_id)?;
    let name = crate::domain::clean_text(&name, 1, MAX_NAME)
        .map_err(|e| ApiError::field("name", e.describe()))?;
    let credential: RegisterPublicKeyCredential =
        serde_json::from_value(credential).map_err(|_| {
            ApiError::field(
                "credential",
                "must be the PublicKeyCredential the browser made (navigator.credentials.create)",
            )
        })?;
    let rp = relying_party(app)?;
    let taken = take_ceremony(app, challenge_id, Purpose::Register, Some(user_id))
        .await?
        .ok_or_else(unknown_challenge)?;
    let state: PasskeyRegistration =
        serde_json::from_str(&taken.state).map_err(|e| internal("a registration state", e))?;
    let passkey = rp
        .finish_passkey_registration(&credential, &state)
        .map_err(|e| {
            tracing::info!(user_id, error = %e, "a passkey registration was refused");
            ApiError::field(
                "credential",
                "was not accepted: it does not answer this challenge from this site",
            )
        })?;
    let credential_id = base64url(passkey.cred_id().as_ref());
    let stored = serde_json::to_string(&passkey).map_err(|e| internal("a passkey", e))?;
    let passwordless = taken.passwordless;
    let saved = change(app, actor, move |c| {
        if passkeys::count_of_user(c.tx, user_id)? >= MAX_PER_USER {
            return Err(ApiError::Conflict(format!(
                "an account holds at most {MAX_PER_USER} passkeys; remove one first"
            )));
        }
        let saved = passkeys::insert(
            c.tx,
            &passkeys::NewCredential {
                user_id,
                name: &name,
                credential_id: &credential_id,
                passkey: &stored,
                passwordless,
                now: now(),
            },
        )?;
        users::refresh_mfa(c.tx, user_id)?;
        c.audit(
            "mfa.webauthn_added",
            "user",
            user_id,
            Some(
                json!({"passkey_id": saved.id, "name": saved.name,
                        "passwordless": passwordless})
                .to_string(),
            ),
        )?;
        c.touch(Kind::User, user_id);
        Ok(saved)
    })
    .await?;
    Ok(saved.into())
}

fn unknown_challenge() -> ApiError {
    ApiError::field(
        "challenge_id",
        "is unknown, expired or already used: begin again",
    )
}

/// The caller's passkeys.
pub async fn list(app: &AppState, user_id: Id) -> Result<Vec<Registered>, ApiError> {
    let all = app
        .store
        .read(move |c| passkeys::of_user(c, user_id))
        .await?;
    Ok(all.into_iter().map(Registered::from).collect())
}

/// Removes one of the caller's passkeys, whose password the transport has checked. The last
/// second factor does not go while the organization's policy requires MFA of them.
pub async fn remove(app: &AppState, actor: &Actor, user_id: Id, id: Id) -> Result<(), ApiError> {
    change(app, actor, move |c| {
        let user = users::get(c.tx, user_id)?;
        let removed = passkeys::delete(c.tx, user_id, id)?;
        users::refresh_mfa(c.tx, user_id)?;
        if !users::get(c.tx, user_id)?.mfa_enabled {
            mfa::refuse_if_required(c.tx, &user)?;
        }
        c.journal(super::journal::Revocation::PasskeyRemoved {
            user_id,
            email: user.email,
            credential_id: removed.credential_id,
        });
        c.audit(
            "mfa.webauthn_removed",
            "user",
            user_id,
            Some(json!({"passkey_id": removed.id, "name": removed.name}).to_string()),
        )?;
        c.touch(Kind::User, user_id);
        Ok(())
    })
    .await
}

/// What a password login of an account with MFA is asked for: the methods it has, and with a
/// passkey, a ceremony to answer with one.
pub async fn second_factor_request(
    app: &AppState,
    actor: &Actor,
    user: &users::User,
) -> Result<crate::error::MfaChallenge, ApiError> {
    let user_id = user.id;
    let (totp, keys, codes) = app
        .store
        .read(move |c| {
            Ok((
                users::totp_enabled(c, user_id)?,
                passkeys::of_user(c, user_id)?,
                users::recovery_codes_left(c, user_id)?,
            ))
        })
        .await?;
    let mut methods = Vec::with_capacity(3);
    if totp {
        methods.push("totp");
    }
    let mut webauthn = None;
    if !keys.is_empty() {
        methods.push("webauthn");
        // A passkey cannot be offered without a relying party: the other methods still are.
        if let Ok(rp) = relying_party(app) {
            let keys: Vec<Passkey> = keys
                .iter()
                .filter_map(|c| serde_json::from_str(&c.passkey).ok())
                .collect();
            let (options, state) = rp
                .start_passkey_authentication(&keys)
                .map_err(|e| internal("starting a passkey authentication", e))?;
            let state =
                serde_json::to_string(&state).map_err(|e| internal("an authentication", e))?;
            // Without room for the ceremony the other methods are still offered: a login that
            // would answer with a code is not refused for it.
            match store_ceremony(app, actor, Some(user_id), Purpose::Login, state, false).await {
                Ok(challenge_id) => {
                    webauthn = Some(json!({
                        "challenge_id": challenge_id,
                        "publicKey": options.public_key,
                    }));
                }
                Err(e) => tracing::warn!(user_id, error = %e, "no passkey ceremony offered"),
            }
        }
    }
    if codes > 0 {
        methods.push("recovery_code");
    }
    Ok(crate::error::MfaChallenge { methods, webauthn })
}

/// What a passkey said.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Not this account's passkey, not this challenge, a bad signature: a wrong code.
    Refused,
    /// The signature counter went backwards: the passkey may have been copied.
    CloneSuspected,
}

/// A code's verdict (TOTP, recovery code) in the same terms.
impl From<bool> for Verdict {
    fn from(accepted: bool) -> Self {
        if accepted {
            Verdict::Accepted
        } else {
            Verdict::Refused
        }
    }
}

/// A passkey answer from a body: `{challenge_id, credential}`.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub challenge_id: String,
    /// The `PublicKeyCredential` of `navigator.credentials.get`, as JSON.
    #[schema(value_type = Object)]
    pub credential: Value,
}

/// Checks a passkey as the second factor of `user`'s login (the password was right).
pub async fn check_second_factor(
    app: &AppState,
    actor: &Actor,
    user: &users::User,
    answer: Answer,
) -> Result<Verdict, ApiError> {
    challenge_field(&answer.challenge_id)?;
    let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(answer.credential) else {
        return Ok(Verdict::Refused);
    };
    let rp = relying_party(app)?;
    let Some(taken) =
        take_ceremony(app, answer.challenge_id, Purpose::Login, Some(user.id)).await?
    else {
        return Ok(Verdict::Refused);
    };
    let state: PasskeyAuthentication =
        serde_json::from_str(&taken.state).map_err(|e| internal("an authentication", e))?;
    let credential_id = base64url(credential.raw_id.as_ref());
    let user_id = user.id;
    let stored = app
        .store
        .read(move |c| passkeys::by_credential_id(c, &credential_id))
        .await?
        .filter(|c| c.user_id == user_id);
    let Some(stored) = stored else {
        return Ok(Verdict::Refused);
    };
    let result = rp.finish_passkey_authentication(&credential, &state);
    settle(app, actor, user, stored, result).await
}

/// Records what an authentication came to: a use (the new counter), or a refusal, audited
/// `mfa.webauthn_clone_suspected` when the counter did not move forward.
async fn settle(
    app: &AppState,
    actor: &Actor,
    user: &users::User,
    stored: passkeys::Credential,
    result: Result<webauthn_rs::prelude::AuthenticationResult, WebauthnError>,
) -> Result<Verdict, ApiError> {
    let mut passkey: Passkey =
        serde_json::from_str(&stored.passkey).map_err(|e| internal("a stored passkey", e))?;
    let counted = match result {
        Ok(result) => {
            // The ceremony's copy of the counter may be older than the stored one (another
            // sign-in between begin and finish): the stored one decides.
            let before = Credential::from(passkey.clone()).counter;
            if (result.counter() > 0 || before > 0) && result.counter() <= before {
                Err(Verdict::CloneSuspected)
            } else {
                passkey.update_credential(&result);
                Ok(())
            }
        }
        Err(WebauthnError::CredentialPossibleCompromise) => Err(Verdict::CloneSuspected),
        Err(e) => {
            tracing::info!(user_id = user.id, error = %e, "a passkey was refused");
            Err(Verdict::Refused)
        }
    };
    match counted {
        Ok(()) => {
            let after = serde_json::to_string(&passkey).map_err(|e| internal("a passkey", e))?;
            let (id, before) = (stored.id, stored.passkey);
            let used = app
                .store
                .write(move |tx| passkeys::used(tx, id, &before, &after, now()))
                .await?;
            // Another sign-in used the passkey since it was read: its counter moved first.
            Ok(if used {
                Verdict::Accepted
            } else {
                Verdict::Refused
            })
        }
        Err(Verdict::CloneSuspected) => {
            let mut entry = actor.entry("mfa.webauthn_clone_suspected", Outcome::Denied);
            entry.user_id = Some(user.id);
            entry.organization_id = Some(user.organization_id);
            entry.target_type = Some("user");
            entry.target_id = Some(user.id);
            entry.details = json!({"passkey_id": stored.id, "name": stored.name}).to_string();
            super::sessions::record(app, entry).await;
            tracing::warn!(
                user_id = user.id,
                passkey_id = stored.id,
                "a passkey's signature counter went backwards: it may have been copied"
            );
            Ok(Verdict::CloneSuspected)
        }
        Err(verdict) => Ok(verdict),
    }
}

/// Begins a sign-in without a password: options that let the authenticator pick the account.
pub async fn sign_in_begin(app: &AppState, actor: &Actor) -> Result<Begun, ApiError> {
    let rp = relying_party(app)?;
    let (options, state) = rp
        .start_discoverable_authentication()
        .map_err(|e| internal("starting a passkey sign-in", e))?;
    let state = serde_json::to_string(&state).map_err(|e| internal("a sign-in state", e))?;
    let challenge_id = store_ceremony(app, actor, None, Purpose::Passkey, state, true).await?;
    let public_key =
        serde_json::to_value(&options.public_key).map_err(|e| internal("options", e))?;
    Ok(Begun {
        challenge_id,
        public_key,
    })
}

/// The passkey a sign-in without a password presents, found by its credential id: its
/// record and account, when it is registered for such sign-ins.
pub struct Presented {
    pub credential: PublicKeyCredential,
    pub stored: Option<(passkeys::Credential, users::User)>,
    /// What the throttle counts the attempt against: the email of the passkey's holder
    /// (registered for sign-in without a password or not), else the credential id presented.
    pub account_key: String,
}

/// Parses a passwordless answer and finds its passkey (no ceremony is taken yet).
pub async fn presented(app: &AppState, credential: Value) -> Result<Presented, ApiError> {
    let credential: PublicKeyCredential = serde_json::from_value(credential).map_err(|_| {
        ApiError::field(
            "credential",
            "must be the PublicKeyCredential the browser made (navigator.credentials.get)",
        )
    })?;
    let credential_id = base64url(credential.raw_id.as_ref());
    let lookup = credential_id.clone();
    let found = app
        .store
        .read(move |c| {
            let Some(found) = passkeys::by_credential_id(c, &lookup)? else {
                return Ok(None);
            };
            let user = users::get(c, found.user_id)?;
            Ok(Some((found, user)))
        })
        .await?;
    let account_key = match &found {
        Some((_, user)) => user.email.clone(),
        None => format!("passkey:{}", &credential_id[..credential_id.len().min(43)]),
    };
    let stored = found.filter(|(found, _)| found.passwordless);
    Ok(Presented {
        credential,
        stored,
        account_key,
    })
}

/// Finishes a sign-in without a password: the ceremony (taken whatever follows), the user
/// handle the authenticator returned, the signature and the counter.
pub async fn sign_in_finish(
    app: &AppState,
    actor: &Actor,
    challenge_id: String,
    presented: &Presented,
) -> Result<Verdict, ApiError> {
    let rp = relying_party(app)?;
    let taken = take_ceremony(app, challenge_id, Purpose::Passkey, None).await?;
    let (Some(taken), Some((stored, user))) = (taken, presented.stored.as_ref()) else {
        return Ok(Verdict::Refused);
    };
    let state: DiscoverableAuthentication =
        serde_json::from_str(&taken.state).map_err(|e| internal("a sign-in state", e))?;
    // The authenticator names the account by its handle: it must be the passkey's holder's.
    let Ok((handle, _)) = rp.identify_discoverable_authentication(&presented.credential) else {
        return Ok(Verdict::Refused);
    };
    let user_id = user.id;
    let holder = app
        .store
        .read(move |c| passkeys::handle(c, user_id))
        .await?;
    if holder.as_deref() != Some(handle.to_string().as_str()) {
        return Ok(Verdict::Refused);
    }
    let passkey: Passkey =
        serde_json::from_str(&stored.passkey).map_err(|e| internal("a stored passkey", e))?;
    let result = rp.finish_discoverable_authentication(
        &presented.credential,
        state,
        &[DiscoverableKey::from(passkey)],
    );
    settle(app, actor, user, stored.clone(), result).await
}

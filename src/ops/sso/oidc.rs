//! Sign-in through an OpenID provider (contract 10.2): the authorization code flow with PKCE
//! (S256), a single-use `state` and `nonce` bound to the browser that started it, the ID
//! token checked against the provider's published keys (fetched again once for a key it has
//! not seen), and a one-time code, not a token, handed to the login page.
//!
//! - `discover` reads the issuer's discovery document and keys when a provider is created or
//!   changed; the endpoints are stored with it.
//! - `start` records the sign-in (in the database: the callback may come back to another
//!   server) and gives the address to send the browser to.
//! - `callback` takes the sign-in (once, from the same browser, within 10 minutes), trades
//!   the code for tokens at the provider, checks the ID token, and admits the user as a
//!   directory sign-in does (`sign_in::admit`).
//! - `exchange` trades the one-time code (once, within 60 s) for an ordinary session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::sign_in::{self, Identity, Refusal};
use super::Provider;
use crate::domain::{hex, Email, Id};
use crate::error::ApiError;
use crate::ops::outbound::{HttpClient, OutboundError};
use crate::ops::sessions::{self, LoggedIn};
use crate::ops::Actor;
use crate::ops::AppState;
use crate::store::audit::Outcome;
use crate::store::sso::{self as stored, InFlight, OidcSettings, OneTimeCode, SignIn};
use crate::store::users;

/// How long a started sign-in waits for its callback.
const SIGN_IN_TTL_MS: i64 = 10 * 60 * 1000;
/// How long the login page has to trade its one-time code.
const CODE_TTL_MS: i64 = 60 * 1000;
/// Sign-ins in flight at most, from one address and installation-wide: each is a row until
/// it expires (a few hundred bytes), and one address cannot take every place.
const IN_FLIGHT: InFlight = InFlight {
    per_client: 100,
    total: 100_000,
};

/// Clock skew allowed on the ID token's times.
const LEEWAY_SECS: u64 = 60;
/// Groups read from a token at most, and the longest name kept.
const MAX_GROUPS: usize = 1000;
const MAX_GROUP_LEN: usize = 1024;

/// The browser-binding cookie's name: under `https://` with the `__Host-` prefix (no other
/// host, a sibling subdomain included, can set it); the provider's own cookies have other
/// names.
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-claribi_sso"
    } else {
        "claribi_sso"
    }
}

/// Each provider's signing keys, as last fetched from its `jwks_uri`.
#[derive(Default)]
pub struct KeyCache(Mutex<HashMap<Id, (String, Arc<JwkSet>)>>);

impl KeyCache {
    fn get(&self, provider: Id, jwks_uri: &str) -> Option<Arc<JwkSet>> {
        let keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
        keys.get(&provider)
            .filter(|(uri, _)| uri == jwks_uri)
            .map(|(_, set)| set.clone())
    }

    fn put(&self, provider: Id, jwks_uri: &str, set: Arc<JwkSet>) {
        let mut keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
        keys.insert(provider, (jwks_uri.to_string(), set));
    }

    /// Forgets a deleted provider's keys.
    pub fn forget(&self, provider: Id) {
        let mut keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
        keys.remove(&provider);
    }
}

/// What discovery found: the endpoints the flow uses, and the keys it checks tokens with.
pub struct Discovered {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub keys: JwkSet,
}

#[derive(serde::Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

/// Whether `url` may be talked to: `https://`, or `http://` on a loopback address only.
pub fn acceptable_url(url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{url} must not carry a user or password"));
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" => {
            let loopback = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
                None => false,
            };
            if loopback {
                Ok(parsed)
            } else {
                Err(format!(
                    "{url}: plain http:// is accepted only on a loopback address; use https://"
                ))
            }
        }
        _ => Err(format!("{url} must be an https:// address")),
    }
}

/// What went wrong reading from a provider, for an administrator: the status, or that it
/// could not be reached, without the network's details (which are logged).
fn briefly(e: &OutboundError) -> String {
    match e {
        OutboundError::Status { url, status } => format!("{url} answered HTTP {status}"),
        OutboundError::Request(detail) => {
            tracing::warn!(error = %detail, "reading from an OpenID provider");
            "it could not be reached (the server log has the details)".into()
        }
    }
}

/// Reads `issuer`'s discovery document and keys; what is wrong, in words, if it cannot.
pub async fn discover(http: &HttpClient, issuer: &str) -> Result<Discovered, String> {
    let issuer_url = acceptable_url(issuer)?;
    let address = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let body = http.get(&address).await.map_err(|e| briefly(&e))?;
    let doc: DiscoveryDocument = serde_json::from_slice(&body)
        .map_err(|e| format!("{address} is not a discovery document: {e}"))?;
    if doc.issuer != issuer {
        return Err(format!(
            "{address} names the issuer {:?}, not {issuer:?}",
            doc.issuer
        ));
    }
    for endpoint in [
        &doc.authorization_endpoint,
        &doc.token_endpoint,
        &doc.jwks_uri,
    ] {
        let url = acceptable_url(endpoint)?;
        // Plain http:// only for a provider on this machine: an https:// issuer's endpoints
        // are https:// too (a document cannot point claribi at its own loopback).
        if url.scheme() != "https" && issuer_url.scheme() == "https" {
            return Err(format!(
                "{endpoint}: the endpoints of an https:// issuer must be https://"
            ));
        }
    }
    if let Some(methods) = &doc.code_challenge_methods_supported {
        if !methods.iter().any(|m| m == "S256") {
            return Err(format!(
                "{issuer} does not offer PKCE with S256, which claribi requires"
            ));
        }
    }
    let keys = fetch_keys(http, &doc.jwks_uri).await.map_err(|e| match e {
        KeysError::Fetch(e) => briefly(&e),
        KeysError::Unusable(why) => why,
    })?;
    Ok(Discovered {
        authorization_endpoint: doc.authorization_endpoint,
        token_endpoint: doc.token_endpoint,
        jwks_uri: doc.jwks_uri,
        keys,
    })
}

/// Why a provider's keys could not be had.
#[derive(Debug, thiserror::Error)]
enum KeysError {
    #[error("{0}")]
    Fetch(OutboundError),
    /// Read, but not a key set with a signing key.
    #[error("{0}")]
    Unusable(String),
}

async fn fetch_keys(http: &HttpClient, jwks_uri: &str) -> Result<JwkSet, KeysError> {
    let body = http.get(jwks_uri).await.map_err(KeysError::Fetch)?;
    let set: JwkSet = serde_json::from_slice(&body)
        .map_err(|e| KeysError::Unusable(format!("{jwks_uri} is not a key set: {e}")))?;
    if set.keys.iter().all(|k| !signing_key(k)) {
        return Err(KeysError::Unusable(format!(
            "{jwks_uri} publishes no signing key"
        )));
    }
    Ok(set)
}

fn signing_key(key: &Jwk) -> bool {
    !matches!(
        key.common.public_key_use,
        Some(PublicKeyUse::Encryption) | Some(PublicKeyUse::Other(_))
    )
}

/// Keeps the keys discovery read for provider `id` (a new or changed provider).
pub fn remember_keys(app: &AppState, id: Id, settings: &OidcSettings, keys: JwkSet) {
    app.oidc_keys.put(id, &settings.jwks_uri, Arc::new(keys));
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// A browser-binding cookie's value as we make them: 43 URL-safe characters.
fn well_formed(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Where a started sign-in sends the browser, and the binding cookie's value to set (again:
/// its 10 minutes start over).
pub struct Started {
    pub location: String,
    pub cookie: String,
}

/// Starts a sign-in through provider `id` for the browser holding `cookie`, from `client`;
/// `redirect_uri` is where the provider sends it back.
pub async fn start(
    app: &AppState,
    id: Id,
    cookie: Option<&str>,
    client: Option<std::net::IpAddr>,
    redirect_uri: String,
) -> Result<Started, ApiError> {
    let provider = super::enabled(app, id).await?;
    let Some(settings) = provider.oidc().cloned() else {
        return Err(ApiError::NotFound);
    };
    // One binding per browser, whichever of its tabs starts a sign-in.
    let browser = match cookie.filter(|c| well_formed(c)) {
        Some(value) => value.to_string(),
        None => random_token(),
    };
    let (state, nonce, verifier) = (random_token(), random_token(), random_token());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let sign_in = SignIn {
        state_hash: sha256_hex(&state),
        provider_id: provider.id,
        browser_hash: sha256_hex(&browser),
        nonce: nonce.clone(),
        verifier,
        redirect_uri: redirect_uri.clone(),
        client: client
            .map(|ip| crate::auth::throttle::address_key(ip).to_string())
            .unwrap_or_default(),
    };
    let recorded = app
        .store
        .write(move |db| stored::begin_sign_in(db, &sign_in, SIGN_IN_TTL_MS, IN_FLIGHT))
        .await?;
    if !recorded {
        return Err(ApiError::Throttled {
            message: "too many sign-ins are waiting for the identity provider's answer; \
                      finish one or try again in a few minutes"
                .into(),
            retry_after: 60,
        });
    }
    let mut location = url::Url::parse(&settings.authorization_endpoint)
        .map_err(|e| ApiError::Internal(format!("provider {id}'s authorization endpoint: {e}")))?;
    location
        .query_pairs_mut()
        .append_pair("client_id", &settings.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", &settings.scopes.join(" "))
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(Started {
        location: location.into(),
        cookie: browser,
    })
}

/// What the provider sent the browser back with.
#[derive(Debug, Default)]
pub struct Callback {
    pub state: Option<String>,
    pub code: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
}

/// How a callback ended, past its state check: the page's one-time code, or why not.
pub enum Ended {
    SignedIn { code: String },
    Failed { not_allowed: bool },
}

/// Why a sign-in failed, for the audit log (never shown to the browser but as a code).
struct Failure {
    reason: String,
    not_allowed: bool,
    email: Option<String>,
    /// The user it was about, when known: `(user, organization)`.
    user: Option<(Id, Id)>,
}

impl Failure {
    fn failed(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            not_allowed: false,
            email: None,
            user: None,
        }
    }
}

/// The callback: the state taken (else `400 invalid`), then everything else ends in a
/// redirect to the login page, with a one-time code or an error code.
pub async fn callback(
    app: &AppState,
    actor: &Actor,
    given: Callback,
    cookie: Option<&str>,
) -> Result<Ended, ApiError> {
    let (Some(state), Some(browser)) = (given.state.as_deref(), cookie) else {
        return Err(unknown_state());
    };
    if state.len() > 256 {
        return Err(unknown_state());
    }
    let (state_hash, browser_hash) = (sha256_hex(state), sha256_hex(browser));
    let sign_in = app
        .store
        .write(move |db| stored::take_sign_in(db, &state_hash, &browser_hash))
        .await?
        .ok_or_else(unknown_state)?;
    // Gone or disabled since the start: the sign-in fails.
    let provider = super::enabled(app, sign_in.provider_id).await.ok();
    let outcome = match &provider {
        Some(provider) => complete(app, provider, &sign_in, &given).await,
        None => Err(Failure::failed("provider_disabled")),
    };
    match outcome {
        Ok(code) => Ok(Ended::SignedIn { code }),
        Err(mut failure) => {
            // The account the address names, when it is one of the provider's organization.
            if let (None, Some(email), Some(provider)) = (failure.user, &failure.email, &provider) {
                if let Ok(email) = Email::parse(email) {
                    let organization = provider.organization_id;
                    failure.user = app
                        .store
                        .read(move |db| users::find_by_email(db, &email))
                        .await
                        .ok()
                        .flatten()
                        .filter(|u| u.organization_id == organization)
                        .map(|u| (u.id, u.organization_id));
                }
            }
            let mut entry = actor.entry("login.failed", Outcome::Failure);
            entry.user_id = failure.user.map(|(user, _)| user);
            // The provider's organization sees who failed to sign in through it.
            entry.organization_id = failure
                .user
                .map(|(_, organization)| organization)
                .or(provider.as_ref().map(|p| p.organization_id));
            let reason: String = failure.reason.chars().take(200).collect();
            let provider = sign_in.provider_id.to_string();
            let mut details = vec![
                ("reason", reason.as_str()),
                ("method", "oidc"),
                ("provider", provider.as_str()),
            ];
            if let Some(email) = &failure.email {
                details.push(("email", email.as_str()));
            }
            entry.details = crate::domain::json_object(&details);
            sessions::record(app, entry).await;
            Ok(Ended::Failed {
                not_allowed: failure.not_allowed,
            })
        }
    }
}

fn unknown_state() -> ApiError {
    ApiError::field(
        "state",
        "unknown, already used, expired, or started in another browser: start the sign-in again",
    )
}

/// Everything after the state: the code traded, the token checked, the user admitted.
async fn complete(
    app: &AppState,
    provider: &Provider,
    sign_in: &SignIn,
    given: &Callback,
) -> Result<String, Failure> {
    let Some(settings) = provider.oidc() else {
        return Err(Failure::failed("provider_disabled"));
    };
    if let Some(error) = &given.error {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect();
        return Err(Failure::failed(format!("provider_error: {error}")));
    }
    // RFC 9207: the answer names who sent it; another issuer's answer is not this one's.
    if given
        .iss
        .as_deref()
        .is_some_and(|iss| iss != settings.issuer)
    {
        return Err(Failure::failed("issuer_mismatch"));
    }
    let Some(code) = given
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 2048)
    else {
        return Err(Failure::failed("no_code"));
    };
    let id_token = redeem(app, provider, settings, sign_in, code).await?;
    let claims = verify(app, provider, settings, &id_token, &sign_in.nonce).await?;
    let who = identity(settings, &claims)?;
    let email = who.email.as_str().to_string();
    let user = match sign_in::admit(app, provider, who, Actor::System("oidc sign-in")).await {
        Ok(user) => user,
        Err(refusal) => {
            let (reason, not_allowed) = match refusal {
                Refusal::Credentials(reason) => (reason.to_string(), false),
                Refusal::NotAllowed(reason, _) => (reason.to_string(), true),
                Refusal::Unavailable(e) => (format!("unavailable: {e}"), false),
                Refusal::Internal(e) => {
                    tracing::error!(provider = provider.id, error = %e, "an OpenID sign-in failed on our side");
                    ("internal_error".to_string(), false)
                }
            };
            return Err(Failure {
                reason,
                not_allowed,
                email: Some(email),
                user: None,
            });
        }
    };
    let one_time = random_token();
    let code = OneTimeCode {
        code_hash: sha256_hex(&one_time),
        // Traded only by the browser that signed in: a code is no use in another's hands.
        browser_hash: sign_in.browser_hash.clone(),
        provider_id: provider.id,
        user_id: user.id,
    };
    let provider_id = provider.id;
    app.store
        .write(move |db| stored::put_code(db, &code, CODE_TTL_MS))
        .await
        .map_err(|e| {
            tracing::error!(provider = provider_id, error = %e, "recording a one-time sign-in code");
            Failure {
                reason: "internal_error".into(),
                not_allowed: false,
                email: Some(email.clone()),
                user: Some((user.id, user.organization_id)),
            }
        })?;
    Ok(one_time)
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// The code traded at the token endpoint (client_secret_basic, the PKCE verifier): the ID
/// token.
async fn redeem(
    app: &AppState,
    provider: &Provider,
    settings: &OidcSettings,
    sign_in: &SignIn,
    code: &str,
) -> Result<String, Failure> {
    let secret = provider.secret(app).map_err(|e| {
        tracing::error!(provider = provider.id, error = %e, "the client secret does not open");
        Failure::failed("internal_error")
    })?;
    // RFC 6749 2.3.1: each part form-encoded before the Basic encoding.
    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let basic = STANDARD.encode(format!(
        "{}:{}",
        encode(&settings.client_id),
        encode(secret.expose())
    ));
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", &sign_in.redirect_uri)
        .append_pair("code_verifier", &sign_in.verifier)
        .finish();
    let (_, body) = app
        .http
        .post_form(&settings.token_endpoint, &format!("Basic {basic}"), form)
        .await
        .map_err(|e| {
            tracing::warn!(provider = provider.id, error = %e, "the token endpoint gave no usable answer");
            Failure::failed(match e {
                OutboundError::Status { status, .. } => format!("token_endpoint_status: {status}"),
                OutboundError::Request(_) => "token_endpoint_unreachable".into(),
            })
        })?;
    let answer: TokenAnswer =
        serde_json::from_slice(&body).map_err(|_| Failure::failed("token_answer_unreadable"))?;
    if let Some(error) = answer.error {
        let error: String = error
            .chars()
            .filter(char::is_ascii_graphic)
            .take(64)
            .collect();
        return Err(Failure::failed(format!("token_refused: {error}")));
    }
    answer
        .id_token
        .ok_or_else(|| Failure::failed("no_id_token"))
}

/// The asymmetric algorithms an ID token may be signed with (never `none`, never a secret
/// shared with us).
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn key_algorithm(alg: Algorithm) -> Option<KeyAlgorithm> {
    Some(match alg {
        Algorithm::RS256 => KeyAlgorithm::RS256,
        Algorithm::RS384 => KeyAlgorithm::RS384,
        Algorithm::RS512 => KeyAlgorithm::RS512,
        Algorithm::PS256 => KeyAlgorithm::PS256,
        Algorithm::PS384 => KeyAlgorithm::PS384,
        Algorithm::PS512 => KeyAlgorithm::PS512,
        Algorithm::ES256 => KeyAlgorithm::ES256,
        Algorithm::ES384 => KeyAlgorithm::ES384,
        Algorithm::EdDSA => KeyAlgorithm::EdDSA,
        _ => return None,
    })
}

/// The keys of `set` that may have signed a token with `kid` and `alg`: the one named, or
/// without a `kid` every signing key of the algorithm.
fn find_keys<'a>(set: &'a JwkSet, kid: Option<&str>, alg: Algorithm) -> Vec<&'a Jwk> {
    set.keys
        .iter()
        .filter(|k| {
            signing_key(k)
                && k.common
                    .key_algorithm
                    .is_none_or(|a| Some(a) == key_algorithm(alg))
                && kid.is_none_or(|kid| k.common.key_id.as_deref() == Some(kid))
        })
        .collect()
}

/// The ID token's claims, once its signature (a published key; the keys fetched again once
/// when the token names one not seen yet), issuer, audience, times and nonce are right.
async fn verify(
    app: &AppState,
    provider: &Provider,
    settings: &OidcSettings,
    token: &str,
    nonce: &str,
) -> Result<HashMap<String, Value>, Failure> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| Failure::failed("id_token_malformed"))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(Failure::failed(format!(
            "id_token_algorithm_refused: {:?}",
            header.alg
        )));
    }
    let kid = header.kid.as_deref();
    let cached = app.oidc_keys.get(provider.id, &settings.jwks_uri);
    let mut keys: Vec<Jwk> = cached
        .as_deref()
        .map(|set| {
            find_keys(set, kid, header.alg)
                .into_iter()
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if keys.is_empty() {
        // A key not seen yet: the provider may have rotated its keys. Fetched once.
        let fresh = fetch_keys(&app.http, &settings.jwks_uri)
            .await
            .map_err(|e| {
                tracing::warn!(provider = provider.id, error = %e, "fetching the provider's keys");
                Failure::failed("keys_unreachable")
            })?;
        let fresh = Arc::new(fresh);
        app.oidc_keys
            .put(provider.id, &settings.jwks_uri, fresh.clone());
        keys = find_keys(&fresh, kid, header.alg)
            .into_iter()
            .cloned()
            .collect();
    }
    if keys.is_empty() {
        return Err(Failure::failed("id_token_key_unknown"));
    }
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[&settings.issuer]);
    validation.set_audience(&[&settings.client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY_SECS;
    let mut refused = "id_token_key_unusable".to_string();
    let mut verified = None;
    for key in &keys {
        let Ok(decoding) = DecodingKey::from_jwk(key) else {
            continue;
        };
        match jsonwebtoken::decode::<HashMap<String, Value>>(token, &decoding, &validation) {
            Ok(data) => {
                verified = Some(data);
                break;
            }
            Err(e) => refused = format!("id_token_refused: {:?}", e.kind()),
        }
    }
    let data = verified.ok_or_else(|| Failure::failed(refused))?;
    let claims = data.claims;
    // Several audiences: the authorized party must be us (OpenID Connect Core 3.1.3.7).
    if let Some(Value::Array(audiences)) = claims.get("aud") {
        if audiences.len() > 1
            && claims.get("azp").and_then(Value::as_str) != Some(settings.client_id.as_str())
        {
            return Err(Failure::failed("id_token_azp_mismatch"));
        }
    }
    let given_nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if !bool::from(given_nonce.as_bytes().ct_eq(nonce.as_bytes())) {
        return Err(Failure::failed("id_token_nonce_mismatch"));
    }
    Ok(claims)
}

/// Who the claims say signed in.
fn identity(settings: &OidcSettings, claims: &HashMap<String, Value>) -> Result<Identity, Failure> {
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or_else(|| Failure::failed("id_token_no_subject"))?;
    let email_text = claims
        .get("email")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::failed("no_email_claim"))?;
    let email = Email::parse(email_text).map_err(|_| Failure::failed("email_claim_invalid"))?;
    // `email_verified` false (a boolean, or the string some providers send): not vouched for.
    let verified = match claims.get("email_verified") {
        Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.eq_ignore_ascii_case("false"),
        _ => true,
    };
    if !verified {
        return Err(Failure {
            reason: "email_not_verified".into(),
            not_allowed: true,
            email: Some(email.as_str().to_string()),
            user: None,
        });
    }
    let name = ["name", "preferred_username"]
        .iter()
        .find_map(|c| claims.get(*c).and_then(Value::as_str))
        .unwrap_or("")
        .to_string();
    let groups = match claims.get(&settings.groups_claim) {
        Some(Value::Array(values)) => values
            .iter()
            .filter_map(Value::as_str)
            .filter(|g| g.len() <= MAX_GROUP_LEN)
            .take(MAX_GROUPS)
            .map(str::to_string)
            .collect(),
        Some(Value::String(one)) if one.len() <= MAX_GROUP_LEN => vec![one.clone()],
        _ => Vec::new(),
    };
    Ok(Identity {
        subject: subject.to_string(),
        email,
        name,
        groups,
        disabled: false,
    })
}

/// Trades the login page's one-time code for a session: once, within 60 s, in the browser
/// that signed in (holding `cookie`), while the provider is enabled.
pub async fn exchange(
    app: &AppState,
    actor: &Actor,
    code: &str,
    cookie: Option<&str>,
) -> Result<LoggedIn, ApiError> {
    let refused = || {
        ApiError::field(
            "code",
            "unknown, already used, expired, or from another browser: sign in again",
        )
    };
    let Some(cookie) = cookie else {
        return Err(refused());
    };
    if code.is_empty() || code.len() > 256 {
        return Err(refused());
    }
    let (code_hash, browser_hash) = (sha256_hex(code), sha256_hex(cookie));
    let (provider_id, user_id) = app
        .store
        .write(move |db| stored::take_code(db, &code_hash, &browser_hash))
        .await?
        .ok_or_else(refused)?;
    super::enabled(app, provider_id)
        .await
        .map_err(|_| refused())?;
    let user = app.store.read(move |db| users::get(db, user_id)).await?;
    if !user.is_active {
        return Err(refused());
    }
    sessions::open(app, actor, user, "oidc").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_talked_to() {
        assert!(acceptable_url("https://idp.example.org/realms/acme").is_ok());
        assert!(acceptable_url("http://127.0.0.1:8080/realms/acme").is_ok());
        assert!(acceptable_url("http://[::1]:8080").is_ok());
        assert!(acceptable_url("http://localhost:8080").is_ok());
        let plain = acceptable_url("http://idp.example.org").unwrap_err();
        assert!(plain.contains("loopback"), "{plain}");
        assert!(acceptable_url("ftp://idp.example.org").is_err());
        assert!(acceptable_url("https://user:pw@idp.example.org").is_err());
        assert!(acceptable_url("not a url").is_err());
    }

    fn claims(json: Value) -> HashMap<String, Value> {
        serde_json::from_value(json).unwrap()
    }

    fn settings() -> OidcSettings {
        OidcSettings {
            issuer: "https://idp.example.org".into(),
            client_id: "claribi".into(),
            scopes: vec!["openid".into()],
            groups_claim: "groups".into(),
            authorization_endpoint: String::new(),
            token_endpoint: String::new(),
            jwks_uri: String::new(),
        }
    }

    #[test]
    fn claims_give_the_identity_and_an_unverified_address_is_refused() {
        let who = identity(
            &settings(),
            &claims(serde_json::json!({
                "sub": "u-1", "email": "Alice@Example.org", "name": "Alice",
                "groups": ["bi-admins", "staff"]
            })),
        )
        .unwrap_or_else(|f| panic!("{}", f.reason));
        assert_eq!(who.subject, "u-1");
        assert_eq!(who.email.as_str(), "alice@example.org");
        assert_eq!(who.groups, vec!["bi-admins", "staff"]);
        // One group may come as a string.
        let one = identity(
            &settings(),
            &claims(serde_json::json!({"sub": "u", "email": "a@example.org", "groups": "staff"})),
        )
        .unwrap_or_else(|f| panic!("{}", f.reason));
        assert_eq!(one.groups, vec!["staff"]);
        for unverified in [serde_json::json!(false), serde_json::json!("false")] {
            let refused = identity(
                &settings(),
                &claims(serde_json::json!({
                    "sub": "u", "email": "a@example.org", "email_verified": unverified
                })),
            );
            assert!(matches!(refused, Err(f) if f.reason == "email_not_verified"));
        }
        let no_email = identity(&settings(), &claims(serde_json::json!({"sub": "u"})));
        assert!(matches!(no_email, Err(f) if f.reason == "no_email_claim"));
    }

    #[test]
    fn a_key_is_found_by_kid_and_algorithm() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "a", "alg": "ES256", "use": "sig",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "b", "use": "enc",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}))
        .unwrap();
        assert_eq!(find_keys(&set, Some("a"), Algorithm::ES256).len(), 1);
        assert!(
            find_keys(&set, Some("a"), Algorithm::RS256).is_empty(),
            "alg must fit"
        );
        assert!(
            find_keys(&set, Some("b"), Algorithm::ES256).is_empty(),
            "not for signing"
        );
        assert!(find_keys(&set, Some("c"), Algorithm::ES256).is_empty());
        assert_eq!(
            find_keys(&set, None, Algorithm::ES256).len(),
            1,
            "every usable key of the algorithm"
        );
    }
}

//! Every endpoint, declared once: its route, the guard its caller must pass, the body it
//! takes, its handler and its documentation. The route table, `dispatch` and the OpenAPI
//! document are all derived from this list, so an endpoint cannot be routed without a
//! description, or documented without a route.
//!
//! A public endpoint's handler takes the `Call`; a guarded one takes the `Call` and the
//! `Caller` its guard built, which nothing else can build: a guarded declaration whose handler
//! does not take a caller, or a public one whose handler does, does not compile.
//!
//! `guard`: `Public`, `Any` (any valid credential), `Interactive` (a JWT session),
//! `InteractiveAdmin` (an administrator's JWT session) or `(Permission)` (the role must grant
//! it and a scoped key carry it). `body`: `NoBody`, `Json`, `OptionalJson` or `LargeJson`
//! (`router::BodyKind`).

use bytes::Buf;
use futures_util::Stream;

use super::docs::{created, d, list, ok, shape, Answer, Doc, Shape, PAGING};
use super::{
    api_keys, audit_log, auth, dashboards, data_sources, goals, mfa, organization, passkeys,
    public_links, reports, service_accounts, sessions, sso, sso_sign_in, system, usage, users,
    Shared,
};
use crate::auth::permission::Permission;
use crate::auth::principal::Guard;
use crate::error::ApiError;
use crate::http::pages::{self, Page};
use crate::http::reply::Response;
use crate::http::router::{BodyKind, Route, Space, Verb};
use crate::http::Pending;
use Answer::NoContent;

/// A declared guard as the route table states it.
macro_rules! guard {
    (Public) => {
        Guard::Public
    };
    (Any) => {
        Guard::Any
    };
    (Interactive) => {
        Guard::Interactive
    };
    (AnyEvenRestricted) => {
        Guard::AnyEvenRestricted
    };
    (InteractiveEvenRestricted) => {
        Guard::InteractiveEvenRestricted
    };
    (InteractiveEvenTemporary) => {
        Guard::InteractiveEvenTemporary
    };
    (MfaEnrolment) => {
        Guard::MfaEnrolment
    };
    (InteractiveAdmin) => {
        Guard::InteractiveAdmin
    };
    (($permission:ident)) => {
        Guard::Permission(Permission::$permission)
    };
}

/// One arm of `dispatch`. A public endpoint reads its body and runs; a guarded one first
/// builds its `Caller` (authentication, the request limit, the guard). There is no rule for a
/// `Public` endpoint with a caller, nor for a guarded one without.
macro_rules! arm {
    ($pending:ident, $body:ident, Public, |$call:ident| $handler:expr) => {{
        let $call = $pending.read(BodyKind::$body).await?;
        $handler
    }};
    ($pending:ident, $body:ident, $guard:tt, |$call:ident, $caller:ident| $handler:expr) => {{
        let mut $pending = $pending;
        let $caller = $pending.authorize(caller_guard!($guard)).await?;
        let $call = $pending.read(BodyKind::$body).await?;
        $handler
    }};
}

/// `guard!` without `Public`: a public endpoint is never authorized.
macro_rules! caller_guard {
    (Public) => {
        compile_error!("a Public endpoint's handler takes no caller")
    };
    ($guard:tt) => {
        guard!($guard)
    };
}

macro_rules! endpoints {
    ($(
        $(#[$meta:meta])*
        $name:ident {
            route: $verb:ident $space:ident $($pattern:literal)|+,
            guard: $guard:tt,
            body: $body:ident,
            handler: |$call:ident $(, $caller:ident)?| $handler:expr,
            doc: $doc:expr,
        },
    )*) => {
        /// Every endpoint of the route table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Endpoint {
            $($(#[$meta])* $name,)*
        }

        /// The route table: one row per pattern. `Api` routes are served under `/api/` and
        /// `/api/v1/`.
        pub(in crate::http) static ROUTES: &[Route] = &[
            $($(Route {
                verb: Verb::$verb,
                space: Space::$space,
                pattern: $pattern,
                endpoint: Endpoint::$name,
                guard: guard!($guard),
                body: BodyKind::$body,
            },)+)*
        ];

        /// The description of an endpoint of the API; `None` for the web pages and their
        /// files, which are not part of the API.
        pub fn doc(endpoint: Endpoint) -> Option<Doc> {
            match endpoint {
                $(Endpoint::$name => Option::<Doc>::from($doc),)*
            }
        }

        /// Checks the caller as the endpoint declares, reads its body and runs its handler.
        pub(in crate::http) async fn dispatch<S, B>(
            endpoint: Endpoint,
            pending: Pending<'_, S>,
        ) -> Result<Response, ApiError>
        where
            S: Stream<Item = Result<B, warp::Error>>,
            B: Buf,
        {
            match endpoint {
                $(Endpoint::$name => arm!(pending, $body, $guard, |$call $(, $caller)?| $handler),)*
            }
        }
    };
}

endpoints! {
    /// `/`: the overview page for a browser (whose script sends a visitor without a session
    /// to `/login`), a redirect to `/login` for any other client.
    Home {
        route: Get Root "",
        guard: Public,
        body: NoBody,
        handler: |call| system::home(&call),
        doc: None,
    },
    Healthz {
        route: Get Root "healthz",
        guard: Public,
        body: NoBody,
        handler: |_call| Ok(system::healthz()),
        doc: d("system", "The process is up", ok::<system::Health>()),
    },
    Schema {
        route: Get Api "schema",
        guard: Public,
        body: NoBody,
        handler: |_call| Ok(system::schema()),
        doc: d(
            "system",
            "This OpenAPI document",
            Answer::Json(200, || Shape {
                name: "OpenApi".into(),
                schema: utoipa::openapi::ObjectBuilder::new().into(),
                nested: Vec::new(),
            }),
        ),
    },
    Readyz {
        route: Get Root "readyz",
        guard: Public,
        body: NoBody,
        handler: |call| system::readyz(call.app, call.ctx.arrived).await,
        doc: d(
            "system",
            "The database answers and this server follows the change feed",
            ok::<system::Readiness>(),
        )
        .errors(&[(
            503,
            "the database does not answer, or this server is behind the change feed; Retry-After",
        )]),
    },
    Login {
        route: Post Api "auth/login",
        guard: Public,
        body: Json,
        handler: |call| auth::login(call).await,
        doc: d(
            "auth",
            "Log in with email and password (and a TOTP or recovery code when the account has MFA)",
            ok::<auth::LoginResponse>(),
        )
        .body::<auth::LoginRequest>()
        .errors(&[
            (
                401,
                "invalid_credentials, or mfa_required / mfa_invalid for an account with MFA",
            ),
            (
                429,
                "too many failed logins for the account or the address; Retry-After",
            ),
            (503, "every password check is busy; Retry-After"),
        ]),
    },
    Refresh {
        route: Post Api "auth/token/refresh",
        guard: Public,
        body: Json,
        handler: |call| auth::refresh(call).await,
        doc: d(
            "auth",
            "A new access token for a refresh token",
            ok::<auth::RefreshResponse>(),
        )
        .body::<auth::RefreshRequest>()
        .errors(&[
            (
                401,
                "token_not_valid, or token_reused (the session is then ended)",
            ),
            (
                503,
                "this server cannot vouch for the live state now; Retry-After",
            ),
        ]),
    },
    Logout {
        route: Post Api "auth/logout",
        guard: InteractiveEvenRestricted,
        body: Json,
        handler: |call, caller| auth::logout(call, caller).await,
        doc: d("auth", "End the session of this refresh token", NoContent)
            .body::<auth::RefreshRequest>(),
    },
    Me {
        route: Get Api "auth/me",
        guard: AnyEvenRestricted,
        body: NoBody,
        handler: |call, caller| auth::me(call, caller),
        doc: d("auth", "The caller", ok::<auth::UserDto>()),
    },
    ChangePassword {
        route: Post Api "auth/password",
        guard: InteractiveEvenTemporary,
        body: Json,
        handler: |call, caller| auth::change_password(call, caller).await,
        doc: d(
            "auth",
            "Change the caller's password; ends the caller's other sessions",
            NoContent,
        )
        .body::<auth::PasswordChange>()
        .errors(&[(409, "the password is kept by the directory that serves the address")]),
    },
    ListSessions {
        route: Get Api "auth/sessions",
        guard: Interactive,
        body: NoBody,
        handler: |call, caller| sessions::list(call, caller).await,
        doc: d(
            "sessions",
            "The caller's sessions",
            list::<sessions::SessionDto>(),
        )
        .query(PAGING),
    },
    RevokeSession {
        route: Delete Api "auth/sessions/{id}",
        guard: Interactive,
        body: NoBody,
        handler: |call, caller| sessions::revoke(call, caller).await,
        doc: d("sessions", "End one of the caller's sessions", NoContent),
    },
    MfaStatus {
        route: Get Api "auth/mfa",
        guard: MfaEnrolment,
        body: NoBody,
        handler: |call, caller| mfa::status(call, caller).await,
        doc: d(
            "mfa",
            "The caller's second factors and how many recovery codes are left",
            ok::<mfa::StatusResponse>(),
        ),
    },
    MfaSetup {
        route: Post Api "auth/mfa/totp/setup",
        guard: MfaEnrolment,
        body: NoBody,
        handler: |call, caller| mfa::setup(call, caller).await,
        doc: d(
            "mfa",
            "Start TOTP enrolment: a secret and its QR code",
            ok::<mfa::SetupResponse>(),
        )
        .errors(&[(409, "MFA is already enabled")]),
    },
    MfaConfirm {
        route: Post Api "auth/mfa/totp/confirm",
        guard: MfaEnrolment,
        body: Json,
        handler: |call, caller| mfa::confirm(call, caller).await,
        doc: d(
            "mfa",
            "Confirm enrolment with a code; answers the recovery codes, shown once",
            ok::<mfa::ConfirmResponse>(),
        )
        .body::<mfa::ConfirmRequest>()
        .errors(&[(409, "MFA is already enabled, or no enrolment was started")]),
    },
    MfaDisable {
        route: Post Api "auth/mfa/totp/disable",
        guard: Interactive,
        body: Json,
        handler: |call, caller| mfa::disable(call, caller).await,
        doc: d(
            "mfa",
            "Turn TOTP off (password and code); MFA stays on while a passkey remains",
            NoContent,
        )
            .body::<mfa::RecheckRequest>()
            .errors(&[
                (409, "TOTP is not enabled"),
                (
                    403,
                    "policy_violation: the organization requires MFA and it is the last factor",
                ),
                (503, "the directory that checks the password does not answer"),
            ]),
    },
    PasskeyRegisterBegin {
        route: Post Api "auth/mfa/webauthn/register/begin",
        guard: MfaEnrolment,
        body: OptionalJson,
        handler: |call, caller| passkeys::register_begin(call, caller).await,
        doc: d(
            "mfa",
            "Begin registering a passkey: the options for navigator.credentials.create",
            ok::<passkeys::BeginResponse>(),
        )
        .body::<passkeys::RegisterBeginRequest>()
        .errors(&[
            (
                400,
                "password: required when the session was opened more than 10 minutes ago, or wrong",
            ),
            (
                409,
                "server.public_url is not set, the account holds the most passkeys it may, or \
                 its directory checks every sign-in (no passwordless passkey)",
            ),
            (429, "too many ceremonies from this address wait; Retry-After"),
        ]),
    },
    PasskeyRegisterFinish {
        route: Post Api "auth/mfa/webauthn/register/finish",
        guard: MfaEnrolment,
        body: Json,
        handler: |call, caller| passkeys::register_finish(call, caller).await,
        doc: d(
            "mfa",
            "Finish registering a passkey with the browser's credential; MFA is on",
            created::<passkeys::PasskeyDto>(),
        )
        .body::<passkeys::RegisterFinishRequest>()
        .errors(&[(
            409,
            "server.public_url is not set, or the passkey is registered already",
        )]),
    },
    ListPasskeys {
        route: Get Api "auth/mfa/webauthn",
        guard: MfaEnrolment,
        body: NoBody,
        handler: |call, caller| passkeys::list(call, caller).await,
        doc: d(
            "mfa",
            "The caller's passkeys",
            list::<passkeys::PasskeyDto>(),
        )
        .query(PAGING),
    },
    RemovePasskey {
        route: Delete Api "auth/mfa/webauthn/{id}",
        guard: Interactive,
        body: Json,
        handler: |call, caller| passkeys::remove(call, caller).await,
        doc: d("mfa", "Remove one of the caller's passkeys (password)", NoContent)
            .body::<passkeys::RemoveRequest>()
            .errors(&[
                (403, "policy_violation: the organization requires MFA and it is the last factor"),
                (503, "the directory that checks the password does not answer"),
            ]),
    },
    PasskeyBegin {
        route: Post Api "auth/passkey/begin",
        guard: Public,
        body: NoBody,
        handler: |call| passkeys::sign_in_begin(call).await,
        doc: d(
            "auth",
            "Begin a sign-in without a password: the options for navigator.credentials.get",
            ok::<passkeys::BeginResponse>(),
        )
        .errors(&[
            (409, "server.public_url is not set"),
            (
                429,
                "this address keeps too many sign-ins waiting to be finished; Retry-After",
            ),
            (503, "too many sign-ins wait to be finished; Retry-After"),
        ]),
    },
    PasskeyFinish {
        route: Post Api "auth/passkey/finish",
        guard: Public,
        body: Json,
        handler: |call| passkeys::sign_in_finish(call).await,
        doc: d(
            "auth",
            "Sign in with a passkey registered for sign-in without a password",
            ok::<auth::LoginResponse>(),
        )
        .body::<passkeys::SignInRequest>()
        .errors(&[
            (
                401,
                "invalid_credentials, or mfa_invalid when the passkey's signature counter went \
                 backwards (it may have been copied)",
            ),
            (
                403,
                "sso_not_allowed: the address's directory checks every sign-in (use the \
                 password, then the passkey)",
            ),
            (
                429,
                "too many failed sign-ins for the account or the address; Retry-After",
            ),
        ]),
    },
    RegenerateRecoveryCodes {
        route: Post Api "auth/mfa/recovery-codes",
        guard: Interactive,
        body: Json,
        handler: |call, caller| mfa::regenerate_recovery_codes(call, caller).await,
        doc: d(
            "mfa",
            "Ten new recovery codes (password and code); the earlier ones stop working",
            ok::<mfa::ConfirmResponse>(),
        )
        .body::<mfa::RecheckRequest>()
        .errors(&[
            (409, "MFA is not enabled"),
            (503, "the directory that checks the password does not answer"),
        ]),
    },
    UnlockUser {
        route: Post Api "users/{id}/unlock",
        guard: InteractiveAdmin,
        body: NoBody,
        handler: |call, caller| users::unlock(call, caller).await,
        doc: d(
            "users",
            "End a user's login lockout after failed logins (administrators)",
            NoContent,
        ),
    },
    SetPassword {
        route: Post Api "users/{id}/set-password",
        guard: InteractiveAdmin,
        body: Json,
        handler: |call, caller| users::set_password(call, caller).await,
        doc: d(
            "users",
            "Set a temporary password for a user (administrators): their sessions end, and the \
             next open only the password change and `me` until they choose their own",
            NoContent,
        )
        .body::<users::SetPasswordRequest>()
        .errors(&[(409, "the user's password is kept by a directory")]),
    },
    ResetMfa {
        route: Post Api "users/{id}/reset-mfa",
        guard: InteractiveAdmin,
        body: NoBody,
        handler: |call, caller| users::reset_mfa(call, caller).await,
        doc: d("users", "Turn off a user's MFA (administrators)", NoContent),
    },
    CreateKey {
        route: Post Api "auth/api-keys",
        guard: Interactive,
        body: Json,
        handler: |call, caller| api_keys::create(call, caller).await,
        doc: d(
            "api-keys",
            "Create an API key; the answer holds the key, shown this once",
            created::<api_keys::KeyDto>(),
        )
        .body::<api_keys::CreateRequest>(),
    },
    ListKeys {
        route: Get Api "auth/api-keys",
        guard: Interactive,
        body: NoBody,
        handler: |call, caller| api_keys::list(call, caller).await,
        doc: d(
            "api-keys",
            "The caller's keys (`?all=true`: the organization's)",
            list::<api_keys::KeyDto>(),
        )
        .sorted(&api_keys::SORTABLE)
        .query(&[
            ("page", "page number, from 1", "integer"),
            (
                "page_size",
                "entries per page, 1 to 100 (default 20)",
                "integer",
            ),
            (
                "all",
                "true: every key of the organization (administrators)",
                "boolean",
            ),
            ("status", "only keys that are active, expired or revoked", "string"),
            (
                "expiring_within",
                "only active keys that expire within this time, like \"7d\"",
                "string",
            ),
        ]),
    },
    GetKey {
        route: Get Api "auth/api-keys/{id}",
        guard: Interactive,
        body: NoBody,
        handler: |call, caller| api_keys::get(call, caller).await,
        doc: d("api-keys", "One key", ok::<api_keys::KeyDto>()),
    },
    RevokeKey {
        route: Delete Api "auth/api-keys/{id}",
        guard: Interactive,
        body: NoBody,
        handler: |call, caller| api_keys::revoke(call, caller).await,
        doc: d(
            "api-keys",
            "Revoke a key, in force on every server before the answer",
            NoContent,
        ),
    },
    UpdateKey {
        route: Patch Api "auth/api-keys/{id}",
        guard: Interactive,
        body: Json,
        handler: |call, caller| api_keys::update(call, caller).await,
        doc: d(
            "api-keys",
            "Rename a key, describe it, or change its address allowlist (creator or administrator)",
            ok::<api_keys::KeyDto>(),
        )
        .body::<api_keys::UpdateRequest>(),
    },
    RotateKey {
        route: Post Api "auth/api-keys/{id}/rotate",
        guard: Interactive,
        body: OptionalJson,
        handler: |call, caller| api_keys::rotate(call, caller).await,
        doc: d(
            "api-keys",
            "Replace a key by a new one with the same name and scopes; the old one is revoked \
             at once, or works on until the end of the requested overlap",
            created::<api_keys::KeyDto>(),
        )
        .body::<api_keys::RotateRequest>()
        .errors(&[(409, "the key is revoked or already rotated, or another rotation of it won")]),
    },
    LeakReport {
        route: Post Api "auth/api-keys/leak-report",
        guard: InteractiveAdmin,
        body: LargeJson,
        handler: |call, caller| api_keys::leak_report(call, caller).await,
        doc: d(
            "api-keys",
            "Find the keys in a leaked text and revoke the organization's active ones (administrators)",
            ok::<api_keys::LeakAnswer>(),
        )
        .body::<api_keys::LeakReport>(),
    },
    Verify {
        route: Get Api "auth/verify",
        guard: Any,
        body: NoBody,
        handler: |call, caller| api_keys::verify(call, caller),
        doc: d(
            "api-keys",
            "Who the credential is",
            ok::<api_keys::VerifyResponse>(),
        ),
    },
    SsoProviders {
        route: Get Api "auth/sso/providers",
        guard: Public,
        body: NoBody,
        handler: |call| sso_sign_in::providers(call).await,
        doc: d(
            "sso",
            "The enabled providers that serve an address's domain (no credentials; [] when none)",
            Answer::Json(200, || {
                let mut item = shape::<sso_sign_in::ServingDto>();
                item.schema = utoipa::openapi::ArrayBuilder::new()
                    .items(item.schema)
                    .into();
                item.name = "ServingProviders".into();
                item
            }),
        )
        .query(&[("email", "the address about to sign in", "string")]),
    },
    SsoStart {
        route: Get Api "auth/sso/{id}/start",
        guard: Public,
        body: NoBody,
        handler: |call| sso_sign_in::start(call).await,
        doc: d(
            "sso",
            "302 to the OpenID provider (authorization code, PKCE S256; state bound to the browser by a cookie)",
            Answer::Redirect("the provider's authorization endpoint"),
        ),
    },
    SsoCallback {
        route: Get Api "auth/sso/callback",
        guard: Public,
        body: NoBody,
        handler: |call| sso_sign_in::callback(call).await,
        doc: d(
            "sso",
            "The provider's redirect back: 302 to /login?sso=<one-time code>, or /login?sso_error=sso_failed|sso_not_allowed",
            Answer::Redirect("/login?sso=<one-time code> or /login?sso_error=<code>"),
        )
        .query(&[
            ("code", "the provider's authorization code", "string"),
            ("state", "the state the start sent", "string"),
        ])
        .errors(&[(400, "the state is unknown, used, expired or from another browser")]),
    },
    SsoExchange {
        route: Post Api "auth/sso/exchange",
        guard: Public,
        body: Json,
        handler: |call| sso_sign_in::exchange(call).await,
        doc: d(
            "sso",
            "Trade the one-time code of /login?sso= for a session (once, within 60 s)",
            ok::<auth::LoginResponse>(),
        )
        .body::<sso_sign_in::ExchangeRequest>()
        .errors(&[(400, "the code is unknown, used or expired")]),
    },
    ListDataSources {
        route: Get Api "data-sources",
        guard: (DataSourcesRead),
        body: NoBody,
        handler: |call, caller| data_sources::list(call, caller).await,
        doc: d(
            "data-sources",
            "The organization's data sources",
            list::<data_sources::DataSourceDto>(),
        )
        .sorted(&data_sources::SORTABLE)
        .query(PAGING),
    },
    CreateDataSource {
        route: Post Api "data-sources",
        guard: (DataSourcesWrite),
        body: Json,
        handler: |call, caller| data_sources::create(call, caller).await,
        doc: d(
            "data-sources",
            "Add a data source",
            created::<data_sources::DataSourceDto>(),
        )
        .body::<data_sources::NewDataSource>(),
    },
    GetDataSource {
        route: Get Api "data-sources/{id}",
        guard: (DataSourcesRead),
        body: NoBody,
        handler: |call, caller| data_sources::get(call, caller).await,
        doc: d(
            "data-sources",
            "One data source",
            ok::<data_sources::DataSourceDto>(),
        ),
    },
    DeleteDataSource {
        route: Delete Api "data-sources/{id}",
        guard: (DataSourcesWrite),
        body: NoBody,
        handler: |call, caller| data_sources::delete(call, caller).await,
        doc: d("data-sources", "Delete a data source", NoContent),
    },
    ListReports {
        route: Get Api "reports",
        guard: (ReportsRead),
        body: NoBody,
        handler: |call, caller| reports::list(call, caller).await,
        doc: d(
            "reports",
            "The organization's reports",
            list::<reports::ReportDto>(),
        )
        .sorted(&reports::SORTABLE)
        .query(PAGING),
    },
    GenerateReport {
        route: Post Api "reports/generate",
        guard: (ReportsGenerate),
        body: Json,
        handler: |call, caller| reports::generate(call, caller).await,
        doc: d(
            "reports",
            "Generate a report from a data source, charged in credits",
            created::<reports::ReportDto>(),
        )
        .body::<reports::GenerateRequest>()
        .errors(&[(402, "insufficient_credits: this month's allowance is spent")]),
    },
    GetReport {
        route: Get Api "reports/{id}",
        guard: (ReportsRead),
        body: NoBody,
        handler: |call, caller| reports::get(call, caller).await,
        doc: d("reports", "One report", ok::<reports::ReportDto>()),
    },
    DeleteReport {
        route: Delete Api "reports/{id}",
        guard: (ReportsDelete),
        body: NoBody,
        handler: |call, caller| reports::delete(call, caller).await,
        doc: d("reports", "Delete a report", NoContent),
    },
    CreateLinkReport {
        route: Post Api "reports/{id}/public-link",
        guard: (ReportsShare),
        body: OptionalJson,
        handler: |call, caller| public_links::create(call, caller, Shared::Report).await,
        doc: d(
            "reports",
            "Share publicly: a new link (replacing the working one)",
            created::<public_links::LinkDto>(),
        )
        .optional_body::<public_links::LinkBody>(),
    },
    ShowLinkReport {
        route: Get Api "reports/{id}/public-link",
        guard: (ReportsShare),
        body: NoBody,
        handler: |call, caller| public_links::show(call, caller, Shared::Report).await,
        doc: d(
            "reports",
            "The working public link",
            ok::<public_links::LinkDto>(),
        ),
    },
    RevokeLinkReport {
        route: Delete Api "reports/{id}/public-link",
        guard: (ReportsShare),
        body: NoBody,
        handler: |call, caller| public_links::revoke(call, caller, Shared::Report).await,
        doc: d(
            "reports",
            "Revoke the working public link",
            NoContent,
        ),
    },
    ListDashboards {
        route: Get Api "dashboards",
        guard: (DashboardsRead),
        body: NoBody,
        handler: |call, caller| dashboards::list(call, caller).await,
        doc: d(
            "dashboards",
            "The organization's dashboards",
            list::<dashboards::DashboardDto>(),
        )
        .sorted(&dashboards::SORTABLE)
        .query(PAGING),
    },
    CreateDashboard {
        route: Post Api "dashboards",
        guard: (DashboardsCreate),
        body: Json,
        handler: |call, caller| dashboards::create(call, caller).await,
        doc: d(
            "dashboards",
            "Create a dashboard",
            created::<dashboards::DashboardDto>(),
        )
        .body::<dashboards::DashboardBody>(),
    },
    GetDashboard {
        route: Get Api "dashboards/{id}",
        guard: (DashboardsRead),
        body: NoBody,
        handler: |call, caller| dashboards::get(call, caller).await,
        doc: d(
            "dashboards",
            "One dashboard",
            ok::<dashboards::DashboardDto>(),
        ),
    },
    UpdateDashboard {
        route: Patch Api "dashboards/{id}",
        guard: (DashboardsUpdate),
        body: Json,
        handler: |call, caller| dashboards::update(call, caller).await,
        doc: d(
            "dashboards",
            "Change a dashboard",
            ok::<dashboards::DashboardDto>(),
        )
        .body::<dashboards::DashboardBody>(),
    },
    DeleteDashboard {
        route: Delete Api "dashboards/{id}",
        guard: (DashboardsDelete),
        body: NoBody,
        handler: |call, caller| dashboards::delete(call, caller).await,
        doc: d("dashboards", "Delete a dashboard", NoContent),
    },
    RefreshDashboard {
        route: Post Api "dashboards/{id}/refresh",
        guard: (DashboardsRefresh),
        body: NoBody,
        handler: |call, caller| dashboards::refresh(call, caller).await,
        doc: d(
            "dashboards",
            "Refresh a dashboard, charged in credits",
            ok::<dashboards::DashboardDto>(),
        )
        .errors(&[(402, "insufficient_credits: this month's allowance is spent")]),
    },
    CreateLinkDashboard {
        route: Post Api "dashboards/{id}/public-link",
        guard: (DashboardsShare),
        body: OptionalJson,
        handler: |call, caller| public_links::create(call, caller, Shared::Dashboard).await,
        doc: d(
            "dashboards",
            "Share publicly: a new link (replacing the working one)",
            created::<public_links::LinkDto>(),
        )
        .optional_body::<public_links::LinkBody>(),
    },
    ShowLinkDashboard {
        route: Get Api "dashboards/{id}/public-link",
        guard: (DashboardsShare),
        body: NoBody,
        handler: |call, caller| public_links::show(call, caller, Shared::Dashboard).await,
        doc: d(
            "dashboards",
            "The working public link",
            ok::<public_links::LinkDto>(),
        ),
    },
    RevokeLinkDashboard {
        route: Delete Api "dashboards/{id}/public-link",
        guard: (DashboardsShare),
        body: NoBody,
        handler: |call, caller| public_links::revoke(call, caller, Shared::Dashboard).await,
        doc: d(
            "dashboards",
            "Revoke the working public link",
            NoContent,
        ),
    },
    Usage {
        route: Get Api "usage",
        guard: (UsageRead),
        body: NoBody,
        handler: |call, caller| usage::get(call, caller).await,
        doc: d("usage", "This month's credits", ok::<usage::UsageDto>()),
    },
    ListGoals {
        route: Get Api "goals",
        guard: (GoalsRead),
        body: NoBody,
        handler: |call, caller| goals::list(call, caller).await,
        doc: d(
            "goals",
            "The organization's goals",
            list::<goals::GoalDto>(),
        )
        .sorted(&goals::SORTABLE)
        .query(PAGING),
    },
    CreateGoal {
        route: Post Api "goals",
        guard: (GoalsWrite),
        body: Json,
        handler: |call, caller| goals::create(call, caller).await,
        doc: d("goals", "Create a goal", created::<goals::GoalDto>()).body::<goals::GoalBody>(),
    },
    GetGoal {
        route: Get Api "goals/{id}",
        guard: (GoalsRead),
        body: NoBody,
        handler: |call, caller| goals::get(call, caller).await,
        doc: d("goals", "One goal", ok::<goals::GoalDto>()),
    },
    UpdateGoal {
        route: Patch Api "goals/{id}",
        guard: (GoalsWrite),
        body: Json,
        handler: |call, caller| goals::update(call, caller).await,
        doc: d("goals", "Change a goal", ok::<goals::GoalDto>()).body::<goals::GoalBody>(),
    },
    GoalProgress {
        route: Get Api "goals/{id}/progress",
        guard: (GoalsRead),
        body: NoBody,
        handler: |call, caller| goals::progress(call, caller).await,
        doc: d(
            "goals",
            "A goal's recorded progress",
            ok::<goals::ProgressDto>(),
        ),
    },
    RecordProgress {
        route: Post Api "goals/{id}/progress",
        guard: (GoalsWrite),
        body: Json,
        handler: |call, caller| goals::record_progress(call, caller).await,
        doc: d(
            "goals",
            "Record a measurement",
            created::<goals::ProgressDto>(),
        )
        .body::<goals::ProgressBody>(),
    },
    ListUsers {
        route: Get Api "users",
        guard: (UsersManage),
        body: NoBody,
        handler: |call, caller| users::list(call, caller).await,
        doc: d(
            "users",
            "The organization's users",
            list::<users::UserDto>(),
        )
        .sorted(&users::SORTABLE)
        .query(PAGING),
    },
    CreateUser {
        route: Post Api "users",
        guard: (UsersManage),
        body: Json,
        handler: |call, caller| users::create(call, caller).await,
        doc: d("users", "Add a user", created::<users::UserDto>())
            .body::<users::CreateUser>()
            .errors(&[(409, "a user with this email already exists")]),
    },
    GetUser {
        route: Get Api "users/{id}",
        guard: (UsersManage),
        body: NoBody,
        handler: |call, caller| users::get(call, caller).await,
        doc: d("users", "One user", ok::<users::UserDto>()),
    },
    UpdateUser {
        route: Patch Api "users/{id}",
        guard: (UsersManage),
        body: Json,
        handler: |call, caller| users::update(call, caller).await,
        doc: d(
            "users",
            "Change a user's role, name or state (deactivation revokes every session and key)",
            ok::<users::UserDto>(),
        )
        .body::<users::UpdateUser>(),
    },
    Organization {
        route: Get Api "organization",
        guard: (OrganizationRead),
        body: NoBody,
        handler: |call, caller| organization::get(call, caller).await,
        doc: d(
            "organization",
            "The caller's organization",
            ok::<organization::OrganizationDto>(),
        ),
    },
    RenameOrganization {
        route: Patch Api "organization",
        guard: (OrganizationManage),
        body: Json,
        handler: |call, caller| organization::rename(call, caller).await,
        doc: d(
            "organization",
            "Rename the organization",
            ok::<organization::OrganizationDto>(),
        )
        .body::<organization::Rename>()
        .errors(&[(409, "an organization with this name already exists")]),
    },
    TransferOwnership {
        route: Post Api "organization/transfer-ownership",
        guard: (OrganizationManage),
        body: Json,
        handler: |call, caller| organization::transfer(call, caller).await,
        doc: d(
            "organization",
            "Make another administrator the owner",
            NoContent,
        )
        .body::<organization::Transfer>(),
    },
    SecurityPolicy {
        route: Get Api "organization/security-policy",
        guard: InteractiveAdmin,
        body: NoBody,
        handler: |call, caller| organization::policy(call, caller).await,
        doc: d(
            "organization",
            "The organization's security policy (administrators and the owner)",
            ok::<organization::PolicyDto>(),
        ),
    },
    ChangeSecurityPolicy {
        route: Patch Api "organization/security-policy",
        guard: InteractiveAdmin,
        body: Json,
        handler: |call, caller| organization::change_policy(call, caller).await,
        doc: d(
            "organization",
            "Change the security policy (the owner, from a session); revokes nothing on its own",
            ok::<organization::PolicyDto>(),
        )
        .body::<organization::PolicyChange>(),
    },
    PolicyViolations {
        route: Get Api "organization/security-policy/violations",
        guard: InteractiveAdmin,
        body: NoBody,
        handler: |call, caller| organization::violations(call, caller).await,
        doc: d(
            "organization",
            "The keys and users that break the security policy today",
            ok::<organization::ViolationsDto>(),
        ),
    },
    ListServiceAccounts {
        route: Get Api "service-accounts",
        guard: InteractiveAdmin,
        body: NoBody,
        handler: |call, caller| service_accounts::list(call, caller).await,
        doc: d(
            "service-accounts",
            "The organization's service accounts",
            list::<service_accounts::ServiceAccountDto>(),
        )
        .sorted(&service_accounts::SORTABLE)
        .query(PAGING),
    },
    CreateServiceAccount {
        route: Post Api "service-accounts",
        guard: InteractiveAdmin,
        body: Json,
        handler: |call, caller| service_accounts::create(call, caller).await,
        doc: d(
            "service-accounts",
            "Add a service account: an identity of the organization for machines",
            created::<service_accounts::ServiceAccountDto>(),
        )
        .body::<service_accounts::CreateRequest>()
        .errors(&[(409, "a service account with this name already exists")]),
    },
    GetServiceAccount {
        route: Get Api "service-accounts/{id}",
        guard: InteractiveAdmin,
        body: NoBody,
        handler: |call, caller| service_accounts::get(call, caller).await,
        doc: d(
            "service-accounts",
            "One service account",
            ok::<service_accounts::ServiceAccountDto>(),
        ),
    },
    UpdateServiceAccount {
        route: Patch Api "service-accounts/{id}",
        guard: InteractiveAdmin,
        body: Json,
        handler: |call, caller| service_accounts::update(call, caller).await,
        doc: d(
            "service-accounts",
            "Rename, describe, change the role of, deactivate (revoking every key) or reactivate",
            ok::<service_accounts::ServiceAccountDto>(),
        )
        .body::<service_accounts::UpdateRequest>()
        .errors(&[(409, "a service account with this name already exists")]),
    },
    DeleteServiceAccount {
        route: Delete Api "service-accounts/{id}",
        guard: InteractiveAdmin,
        body: NoBody,
        handler: |call, caller| service_accounts::delete(call, caller).await,
        doc: d(
            "service-accounts",
            "Delete a service account; its keys are revoked at once",
            NoContent,
        ),
    },
    ServiceAccountKeys {
        route: Get Api "service-accounts/{id}/keys",
        guard: InteractiveAdmin,
        body: NoBody,
        handler: |call, caller| service_accounts::list_keys(call, caller).await,
        doc: d(
            "service-accounts",
            "A service account's keys",
            list::<api_keys::KeyDto>(),
        )
        .sorted(&api_keys::SORTABLE)
        .query(&[
            ("page", "page number, from 1", "integer"),
            (
                "page_size",
                "entries per page, 1 to 100 (default 20)",
                "integer",
            ),
            ("status", "only keys that are active, expired or revoked", "string"),
            (
                "expiring_within",
                "only active keys that expire within this time, like \"7d\"",
                "string",
            ),
        ]),
    },
    CreateServiceAccountKey {
        route: Post Api "service-accounts/{id}/keys",
        guard: InteractiveAdmin,
        body: Json,
        handler: |call, caller| service_accounts::create_key(call, caller).await,
        doc: d(
            "service-accounts",
            "A key that acts as the service account; the key is shown this once",
            created::<api_keys::KeyDto>(),
        )
        .body::<api_keys::CreateRequest>()
        .errors(&[
            (403, "scope_exceeds_role, or policy_violation naming the rule"),
            (409, "the service account is deactivated"),
        ]),
    },
    RevokeServiceAccountKey {
        route: Delete Api "service-accounts/{id}/keys/{key_id}",
        guard: InteractiveAdmin,
        body: NoBody,
        handler: |call, caller| service_accounts::revoke_key(call, caller).await,
        doc: d(
            "service-accounts",
            "Revoke one of a service account's keys, at once",
            NoContent,
        ),
    },
    AuditLog {
        route: Get Api "audit-logs",
        guard: (AuditRead),
        body: NoBody,
        handler: |call, caller| audit_log::list(call, caller).await,
        doc: d(
            "audit",
            "The organization's audit log, newest first",
            list::<audit_log::AuditDto>(),
        )
        .sorted(&audit_log::SORTABLE)
        .query(&[
            ("page", "page number, from 1", "integer"),
            (
                "page_size",
                "entries per page, 1 to 100 (default 20)",
                "integer",
            ),
            (
                "action",
                "only entries of this action, e.g. login.failed",
                "string",
            ),
            ("user_id", "only entries of this user", "integer"),
            (
                "since",
                "only entries at or after this time (RFC 3339, or a day: from midnight UTC)",
                "string",
            ),
            ("until", "only entries before this time", "string"),
        ]),
    },
    AuditExport {
        route: Get Api "audit-logs/export",
        guard: (AuditRead),
        body: NoBody,
        handler: |call, caller| audit_log::export(call, caller).await,
        doc: d(
            "audit",
            "The whole audit log (filtered as the list), streamed: newest first, or with \
             `since_id` the entries after that id, oldest first, up to the newest when it started",
            Answer::Export(shape::<audit_log::AuditDto>),
        )
        .query(&[
            (
                "format",
                "csv, json (default: one array) or jsonl (one entry per line)",
                "string",
            ),
            (
                "since_id",
                "only entries after this id, oldest first (0: from the first)",
                "integer",
            ),
            ("action", "only entries of this action", "string"),
            ("user_id", "only entries of this user", "integer"),
            ("since", "only entries at or after this time", "string"),
            ("until", "only entries before this time", "string"),
        ]),
    },
    AuditVerify {
        route: Get Api "audit-logs/verify",
        guard: (AuditRead),
        body: NoBody,
        handler: |call, caller| audit_log::verify(call, caller).await,
        doc: d(
            "audit",
            "Walk the organization's hash chain and name the first entry that does not match",
            ok::<audit_log::ChainVerdict>(),
        ),
    },
    ListProviders {
        route: Get Api "organization/sso-providers",
        guard: InteractiveAdmin,
        body: NoBody,
        handler: |call, caller| sso::list(call, caller).await,
        doc: d(
            "sso",
            "The organization's sign-in providers (owner and administrators, interactive sessions)",
            list::<sso::ProviderDto>(),
        )
        .query(PAGING),
    },
    CreateProvider {
        route: Post Api "organization/sso-providers",
        guard: InteractiveAdmin,
        body: Json,
        handler: |call, caller| sso::create(call, caller).await,
        doc: d(
            "sso",
            "Add a sign-in provider (OpenID Connect, or LDAP / Active Directory); its secret is write-only",
            created::<sso::ProviderDto>(),
        )
        .body::<sso::ProviderBody>()
        .errors(&[
            (400, "invalid fields, or the OpenID issuer's discovery document or keys cannot be read (naming issuer)"),
            (409, "a domain is served by another enabled provider"),
        ]),
    },
    GetProvider {
        route: Get Api "organization/sso-providers/{id}",
        guard: InteractiveAdmin,
        body: NoBody,
        handler: |call, caller| sso::get(call, caller).await,
        doc: d("sso", "One sign-in provider", ok::<sso::ProviderDto>()),
    },
    UpdateProvider {
        route: Patch Api "organization/sso-providers/{id}",
        guard: InteractiveAdmin,
        body: Json,
        handler: |call, caller| sso::update(call, caller).await,
        doc: d(
            "sso",
            "Change a sign-in provider (fields left out keep their value)",
            ok::<sso::ProviderDto>(),
        )
        .body::<sso::ProviderBody>()
        .errors(&[
            (400, "invalid fields, or the OpenID issuer's discovery document or keys cannot be read (naming issuer)"),
            (409, "a domain is served by another enabled provider"),
        ]),
    },
    DeleteProvider {
        route: Delete Api "organization/sso-providers/{id}",
        guard: InteractiveAdmin,
        body: NoBody,
        handler: |call, caller| sso::delete(call, caller).await,
        doc: d(
            "sso",
            "Remove a sign-in provider (its users stay, with their roles)",
            NoContent,
        ),
    },
    SyncProvider {
        route: Post Api "organization/sso-providers/{id}/sync",
        guard: InteractiveAdmin,
        body: NoBody,
        handler: |call, caller| sso::sync(call, caller).await,
        doc: d(
            "sso",
            "Compare the directory with the users the provider manages: deactivate leavers, apply role changes",
            ok::<sso::SyncDto>(),
        )
        .query(&[("dry_run", "true: report only, change nothing", "boolean")])
        .errors(&[
            (409, "the sync would deactivate every managed user, or the provider is disabled: nothing changed"),
            (503, "the directory cannot be reached: nothing changed"),
        ]),
    },
    PublicReadReport {
        route: Get Root "public/reports/{token}",
        guard: Public,
        body: NoBody,
        handler: |call| public_links::read(call, Shared::Report).await,
        doc: d(
            "public",
            "A shared report, without credentials",
            ok::<public_links::PublicReport>(),
        ),
    },
    PublicReadDashboard {
        route: Get Root "public/dashboards/{token}",
        guard: Public,
        body: NoBody,
        handler: |call| public_links::read(call, Shared::Dashboard).await,
        doc: d(
            "public",
            "A shared dashboard, without credentials",
            ok::<public_links::PublicDashboard>(),
        ),
    },
    SharePage {
        route: Get Root "s/{token}",
        guard: Public,
        body: NoBody,
        handler: |call| public_links::page(call).await,
        doc: None,
    },
    LoginPage {
        route: Get Root "login",
        guard: Public,
        body: NoBody,
        handler: |call| pages::page(Page::Login, call.ctx),
        doc: None,
    },
    ApiDocsPage {
        route: Get Root "docs/api",
        guard: Public,
        body: NoBody,
        handler: |call| pages::page(Page::ApiDocs, call.ctx),
        doc: None,
    },
    AppPage {
        route: Get Root "reports" | "reports/{id}" | "dashboards" | "dashboards/{id}" | "goals" | "goals/{id}" | "data-sources" | "usage" | "settings" | "settings/developer" | "settings/organization",
        guard: Public,
        body: NoBody,
        handler: |call| pages::page(Page::App, call.ctx),
        doc: None,
    },
    ApiKeysPage {
        route: Get Root "settings/developer/api-keys",
        guard: Public,
        body: NoBody,
        handler: |call| pages::page(Page::ApiKeys, call.ctx),
        doc: None,
    },
    SecurityPage {
        route: Get Root "settings/security",
        guard: Public,
        body: NoBody,
        handler: |call| pages::page(Page::Security, call.ctx),
        doc: None,
    },
    SsoProvidersPage {
        route: Get Root "settings/security/sso",
        guard: Public,
        body: NoBody,
        handler: |call| pages::page(Page::SsoProviders, call.ctx),
        doc: None,
    },
    ServiceAccountsPage {
        route: Get Root "settings/service-accounts",
        guard: Public,
        body: NoBody,
        handler: |call| pages::page(Page::ServiceAccounts, call.ctx),
        doc: None,
    },
    SecurityPolicyPage {
        route: Get Root "settings/security/policy",
        guard: Public,
        body: NoBody,
        handler: |call| pages::page(Page::SecurityPolicy, call.ctx),
        doc: None,
    },
    UsersPage {
        route: Get Root "admin/users",
        guard: Public,
        body: NoBody,
        handler: |call| pages::page(Page::Users, call.ctx),
        doc: None,
    },
    AuditPage {
        route: Get Root "admin/audit",
        guard: Public,
        body: NoBody,
        handler: |call| pages::page(Page::Audit, call.ctx),
        doc: None,
    },
    Asset {
        route: Get Root "assets/{token}",
        guard: Public,
        body: NoBody,
        handler: |call| pages::asset(call.params.token.as_deref(), call.ctx),
        doc: None,
    },
}

//! What each endpoint takes and answers, for the OpenAPI document (`http/openapi.rs`). One
//! exhaustive match: an endpoint added to the route table without a description here does not
//! compile. The schemas are the handlers' own DTOs (`utoipa::ToSchema`).

use std::borrow::Cow;

use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

use super::{
    api_keys, audit_log, auth, dashboards, data_sources, goals, mfa, organization, public_links,
    reports, sessions, sso, sso_sign_in, system, usage, users, Endpoint, Shared,
};

/// A JSON shape: its name, its schema, and the named schemas it refers to.
pub struct Shape {
    pub name: Cow<'static, str>,
    pub schema: RefOr<Schema>,
    pub nested: Vec<(String, RefOr<Schema>)>,
}

fn shape<T: ToSchema>() -> Shape {
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    Shape {
        name: T::name(),
        schema: T::schema(),
        nested,
    }
}

/// What a successful answer is.
pub enum Answer {
    Json(u16, fn() -> Shape),
    /// A paginated list of these, in the `{count, next, previous, results}` envelope.
    List(fn() -> Shape),
    NoContent,
    /// The audit export: CSV or JSON (an array of entries) as `?format=` asks.
    Export(fn() -> Shape),
    /// A `302` to where the text says.
    Redirect(&'static str),
}

/// One operation of the document.
pub struct Doc {
    pub summary: &'static str,
    pub tag: &'static str,
    pub request: Option<fn() -> Shape>,
    /// The body may be left out entirely.
    pub request_optional: bool,
    pub answer: Answer,
    /// Query parameters: (name, description, schema type).
    pub query: &'static [(&'static str, &'static str, &'static str)],
    /// Error answers beyond those every route of its kind has: (status, what).
    pub errors: &'static [(u16, &'static str)],
}

impl Doc {
    fn new(tag: &'static str, summary: &'static str, answer: Answer) -> Doc {
        Doc {
            summary,
            tag,
            request: None,
            request_optional: false,
            answer,
            query: &[],
            errors: &[],
        }
    }

    fn errors(mut self, errors: &'static [(u16, &'static str)]) -> Doc {
        self.errors = errors;
        self
    }

    fn body<T: ToSchema>(mut self) -> Doc {
        self.request = Some(shape::<T>);
        self
    }

    fn optional_body<T: ToSchema>(mut self) -> Doc {
        self.request = Some(shape::<T>);
        self.request_optional = true;
        self
    }

    fn query(mut self, query: &'static [(&'static str, &'static str, &'static str)]) -> Doc {
        self.query = query;
        self
    }
}

fn ok<T: ToSchema>() -> Answer {
    Answer::Json(200, shape::<T>)
}

fn created<T: ToSchema>() -> Answer {
    Answer::Json(201, shape::<T>)
}

fn list<T: ToSchema>() -> Answer {
    Answer::List(shape::<T>)
}

const PAGING: &[(&str, &str, &str)] = &[
    ("page", "page number, from 1", "integer"),
    (
        "page_size",
        "entries per page, 1 to 100 (default 20)",
        "integer",
    ),
];

/// The description of an endpoint of the API; `None` for the web pages and their files,
/// which are not part of the API.
pub fn doc(endpoint: Endpoint) -> Option<Doc> {
    use Answer::NoContent;
    use Endpoint::*;
    let d = Doc::new;
    Some(match endpoint {
        Home | Page(_) | Asset | SharePage => return None,
        Schema => d(
            "system",
            "This OpenAPI document",
            Answer::Json(200, || Shape {
                name: "OpenApi".into(),
                schema: utoipa::openapi::ObjectBuilder::new().into(),
                nested: Vec::new(),
            }),
        ),
        Healthz => d("system", "The process is up", ok::<system::Health>()),
        Readyz => d(
            "system",
            "The database answers and this server follows the change feed",
            ok::<system::Readiness>(),
        )
        .errors(&[(
            503,
            "the database does not answer, or this server is behind the change feed; Retry-After",
        )]),
        Login => d(
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
        Refresh => d(
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
        Logout => d("auth", "End the session of this refresh token", NoContent)
            .body::<auth::RefreshRequest>(),
        Me => d("auth", "The caller", ok::<auth::UserDto>()),
        ChangePassword => d(
            "auth",
            "Change the caller's password; ends the caller's other sessions",
            NoContent,
        )
        .body::<auth::PasswordChange>(),
        ListSessions => d(
            "sessions",
            "The caller's sessions",
            list::<sessions::SessionDto>(),
        )
        .query(PAGING),
        RevokeSession => d("sessions", "End one of the caller's sessions", NoContent),
        MfaSetup => d(
            "mfa",
            "Start TOTP enrolment: a secret and its QR code",
            ok::<mfa::SetupResponse>(),
        )
        .errors(&[(409, "MFA is already enabled")]),
        MfaConfirm => d(
            "mfa",
            "Confirm enrolment with a code; answers the recovery codes, shown once",
            ok::<mfa::ConfirmResponse>(),
        )
        .body::<mfa::ConfirmRequest>()
        .errors(&[(409, "MFA is already enabled, or no enrolment was started")]),
        MfaDisable => d("mfa", "Turn MFA off (password and code)", NoContent)
            .body::<mfa::DisableRequest>()
            .errors(&[(409, "MFA is not enabled")]),
        ResetMfa => d("users", "Turn off a user's MFA (administrators)", NoContent),
        CreateKey => d(
            "api-keys",
            "Create an API key; the answer holds the key, shown this once",
            created::<api_keys::KeyDto>(),
        )
        .body::<api_keys::CreateRequest>(),
        ListKeys => d(
            "api-keys",
            "The caller's keys (`?all=true`: the organization's)",
            list::<api_keys::KeyDto>(),
        )
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
        ]),
        GetKey => d("api-keys", "One key", ok::<api_keys::KeyDto>()),
        RevokeKey => d(
            "api-keys",
            "Revoke a key, in force on every server before the answer",
            NoContent,
        ),
        RotateKey => d(
            "api-keys",
            "Replace a key by a new one with the same name and scopes; the old one is revoked \
             at once, or works on until the end of the requested overlap",
            created::<api_keys::KeyDto>(),
        )
        .body::<api_keys::RotateRequest>()
        .errors(&[(409, "the key is revoked or already rotated, or another rotation of it won")]),
        UpdateKey => d(
            "api-keys",
            "Rename a key, describe it, or change its address allowlist (creator or administrator)",
            ok::<api_keys::KeyDto>(),
        )
        .body::<api_keys::UpdateRequest>(),
        LeakReport => d(
            "api-keys",
            "Find the keys in a leaked text and revoke the organization's active ones (administrators)",
            ok::<api_keys::LeakAnswer>(),
        )
        .body::<api_keys::LeakReport>(),
        Verify => d(
            "api-keys",
            "Who the credential is",
            ok::<api_keys::VerifyResponse>(),
        ),
        ListDataSources => d(
            "data-sources",
            "The organization's data sources",
            list::<data_sources::DataSourceDto>(),
        )
        .query(PAGING),
        CreateDataSource => d(
            "data-sources",
            "Add a data source",
            created::<data_sources::DataSourceDto>(),
        )
        .body::<data_sources::NewDataSource>(),
        GetDataSource => d(
            "data-sources",
            "One data source",
            ok::<data_sources::DataSourceDto>(),
        ),
        DeleteDataSource => d("data-sources", "Delete a data source", NoContent),
        ListReports => d(
            "reports",
            "The organization's reports",
            list::<reports::ReportDto>(),
        )
        .query(PAGING),
        GenerateReport => d(
            "reports",
            "Generate a report from a data source, charged in credits",
            created::<reports::ReportDto>(),
        )
        .body::<reports::GenerateRequest>()
        .errors(&[(402, "insufficient_credits: this month's allowance is spent")]),
        GetReport => d("reports", "One report", ok::<reports::ReportDto>()),
        DeleteReport => d("reports", "Delete a report", NoContent),
        ListDashboards => d(
            "dashboards",
            "The organization's dashboards",
            list::<dashboards::DashboardDto>(),
        )
        .query(PAGING),
        CreateDashboard => d(
            "dashboards",
            "Create a dashboard",
            created::<dashboards::DashboardDto>(),
        )
        .body::<dashboards::DashboardBody>(),
        GetDashboard => d(
            "dashboards",
            "One dashboard",
            ok::<dashboards::DashboardDto>(),
        ),
        UpdateDashboard => d(
            "dashboards",
            "Change a dashboard",
            ok::<dashboards::DashboardDto>(),
        )
        .body::<dashboards::DashboardBody>(),
        DeleteDashboard => d("dashboards", "Delete a dashboard", NoContent),
        RefreshDashboard => d(
            "dashboards",
            "Refresh a dashboard, charged in credits",
            ok::<dashboards::DashboardDto>(),
        )
        .errors(&[(402, "insufficient_credits: this month's allowance is spent")]),
        Usage => d("usage", "This month's credits", ok::<usage::UsageDto>()),
        ListGoals => d(
            "goals",
            "The organization's goals",
            list::<goals::GoalDto>(),
        )
        .query(PAGING),
        CreateGoal => {
            d("goals", "Create a goal", created::<goals::GoalDto>()).body::<goals::GoalBody>()
        }
        GetGoal => d("goals", "One goal", ok::<goals::GoalDto>()),
        UpdateGoal => d("goals", "Change a goal", ok::<goals::GoalDto>()).body::<goals::GoalBody>(),
        GoalProgress => d(
            "goals",
            "A goal's recorded progress",
            ok::<goals::ProgressDto>(),
        ),
        RecordProgress => d(
            "goals",
            "Record a measurement",
            created::<goals::ProgressDto>(),
        )
        .body::<goals::ProgressBody>(),
        CreateLink(shared) => d(
            shared_tag(shared),
            "Share publicly: a new link (replacing the working one)",
            created::<public_links::LinkDto>(),
        )
        .optional_body::<public_links::LinkBody>(),
        ShowLink(shared) => d(
            shared_tag(shared),
            "The working public link",
            ok::<public_links::LinkDto>(),
        ),
        RevokeLink(shared) => d(
            shared_tag(shared),
            "Revoke the working public link",
            NoContent,
        ),
        PublicRead(Shared::Report) => d(
            "public",
            "A shared report, without credentials",
            ok::<public_links::PublicReport>(),
        ),
        PublicRead(Shared::Dashboard) => d(
            "public",
            "A shared dashboard, without credentials",
            ok::<public_links::PublicDashboard>(),
        ),
        ListUsers => d(
            "users",
            "The organization's users",
            list::<users::UserDto>(),
        )
        .query(PAGING),
        CreateUser => d("users", "Add a user", created::<users::UserDto>())
            .body::<users::CreateUser>()
            .errors(&[(409, "a user with this email already exists")]),
        GetUser => d("users", "One user", ok::<users::UserDto>()),
        UpdateUser => d(
            "users",
            "Change a user's role, name or state (deactivation revokes every session and key)",
            ok::<users::UserDto>(),
        )
        .body::<users::UpdateUser>(),
        Organization => d(
            "organization",
            "The caller's organization",
            ok::<organization::OrganizationDto>(),
        ),
        RenameOrganization => d(
            "organization",
            "Rename the organization",
            ok::<organization::OrganizationDto>(),
        )
        .body::<organization::Rename>()
        .errors(&[(409, "an organization with this name already exists")]),
        TransferOwnership => d(
            "organization",
            "Make another administrator the owner",
            NoContent,
        )
        .body::<organization::Transfer>(),
        AuditLog => d(
            "audit",
            "The organization's audit log, newest first",
            list::<audit_log::AuditDto>(),
        )
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
        AuditVerify => d(
            "audit",
            "Walk the organization's hash chain and name the first entry that does not match",
            ok::<audit_log::ChainVerdict>(),
        ),
        SsoProviders => d(
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
        SsoStart => d(
            "sso",
            "302 to the OpenID provider (authorization code, PKCE S256; state bound to the browser by a cookie)",
            Answer::Redirect("the provider's authorization endpoint"),
        ),
        SsoCallback => d(
            "sso",
            "The provider's redirect back: 302 to /login?sso=<one-time code>, or /login?sso_error=sso_failed|sso_not_allowed",
            Answer::Redirect("/login?sso=<one-time code> or /login?sso_error=<code>"),
        )
        .query(&[
            ("code", "the provider's authorization code", "string"),
            ("state", "the state the start sent", "string"),
        ])
        .errors(&[(400, "the state is unknown, used, expired or from another browser")]),
        SsoExchange => d(
            "sso",
            "Trade the one-time code of /login?sso= for a session (once, within 60 s)",
            ok::<auth::LoginResponse>(),
        )
        .body::<sso_sign_in::ExchangeRequest>()
        .errors(&[(400, "the code is unknown, used or expired")]),
        ListProviders => d(
            "sso",
            "The organization's sign-in providers (owner and administrators, interactive sessions)",
            list::<sso::ProviderDto>(),
        )
        .query(PAGING),
        CreateProvider => d(
            "sso",
            "Add a sign-in provider (OpenID Connect, or LDAP / Active Directory); its secret is write-only",
            created::<sso::ProviderDto>(),
        )
        .body::<sso::ProviderBody>()
        .errors(&[
            (400, "invalid fields, or the OpenID issuer's discovery document or keys cannot be read (naming issuer)"),
            (409, "a domain is served by another enabled provider"),
        ]),
        GetProvider => d("sso", "One sign-in provider", ok::<sso::ProviderDto>()),
        UpdateProvider => d(
            "sso",
            "Change a sign-in provider (fields left out keep their value)",
            ok::<sso::ProviderDto>(),
        )
        .body::<sso::ProviderBody>()
        .errors(&[
            (400, "invalid fields, or the OpenID issuer's discovery document or keys cannot be read (naming issuer)"),
            (409, "a domain is served by another enabled provider"),
        ]),
        DeleteProvider => d(
            "sso",
            "Remove a sign-in provider (its users stay, with their roles)",
            NoContent,
        ),
        SyncProvider => d(
            "sso",
            "Compare the directory with the users the provider manages: deactivate leavers, apply role changes",
            ok::<sso::SyncDto>(),
        )
        .query(&[("dry_run", "true: report only, change nothing", "boolean")])
        .errors(&[
            (409, "the sync would deactivate every managed user, or the provider is disabled: nothing changed"),
            (503, "the directory cannot be reached: nothing changed"),
        ]),
        AuditExport => d(
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
    })
}

fn shared_tag(shared: Shared) -> &'static str {
    match shared {
        Shared::Report => "reports",
        Shared::Dashboard => "dashboards",
    }
}

//! The handlers, one file per area, and `dispatch`, which hands each endpoint its `Call`.
//! Shared here: pagination, audit entries, the user object, the caller's organization and the
//! hourly generation limit.

mod api_keys;
mod audit_log;
mod auth;
mod dashboards;
mod data_sources;
pub mod docs;
mod goals;
mod mfa;
mod organization;
mod public_links;
mod reports;
mod sessions;
mod sso;
mod sso_sign_in;
mod system;
mod usage;
mod users;

use bytes::Bytes;
use serde::Serialize;

use crate::app::AppState;
use crate::auth::principal::Authorized;
use crate::error::ApiError;
use crate::ops::Actor;

use super::reply::{self, Response};
use super::request::RequestCtx;
use super::router::Params;

/// Every endpoint of the route table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/`: the overview page for a browser (whose script sends a visitor without a session to
    /// `/login`), a redirect to `/login` for any other client.
    Home,
    Schema,
    Healthz,
    Readyz,
    Login,
    Refresh,
    Logout,
    Me,
    ChangePassword,
    ListSessions,
    RevokeSession,
    MfaSetup,
    MfaConfirm,
    MfaDisable,
    ResetMfa,
    CreateKey,
    ListKeys,
    GetKey,
    RevokeKey,
    RotateKey,
    UpdateKey,
    LeakReport,
    Verify,
    ListDataSources,
    CreateDataSource,
    GetDataSource,
    DeleteDataSource,
    ListReports,
    GenerateReport,
    GetReport,
    DeleteReport,
    ListDashboards,
    CreateDashboard,
    GetDashboard,
    UpdateDashboard,
    DeleteDashboard,
    RefreshDashboard,
    Usage,
    ListGoals,
    CreateGoal,
    GetGoal,
    UpdateGoal,
    GoalProgress,
    RecordProgress,
    CreateLink(Shared),
    ShowLink(Shared),
    RevokeLink(Shared),
    PublicRead(Shared),
    SharePage,
    /// A web page of the contract's section 6.
    Page(super::pages::Page),
    /// `/assets/{file}`: the pages' scripts and stylesheet.
    Asset,
    ListUsers,
    CreateUser,
    GetUser,
    UpdateUser,
    Organization,
    RenameOrganization,
    TransferOwnership,
    AuditLog,
    AuditExport,
    AuditVerify,
    SsoProviders,
    SsoStart,
    SsoCallback,
    SsoExchange,
    ListProviders,
    CreateProvider,
    GetProvider,
    UpdateProvider,
    DeleteProvider,
    SyncProvider,
}

/// What a public link shares.
pub use crate::store::public_links::Shared;

/// Everything a handler may use of one request.
pub struct Call<'a> {
    pub app: &'a AppState,
    pub ctx: &'a RequestCtx,
    pub params: Params,
    /// Set by the route's guard; `None` only on public routes.
    pub auth: Option<Authorized>,
    pub body: Bytes,
}

impl Call<'_> {
    /// The guard's verdict. A protected handler on a route without a guard fails closed.
    fn authorized(&self) -> Result<&Authorized, ApiError> {
        self.auth
            .as_ref()
            .ok_or_else(|| ApiError::Internal("route has no guard".into()))
    }

    /// The caller's organization: every content query is scoped by it.
    fn organization_id(&self) -> Result<crate::domain::Id, ApiError> {
        Ok(self.authorized()?.principal().organization_id)
    }

    fn id(&self) -> Result<crate::domain::Id, ApiError> {
        self.params.id.ok_or(ApiError::NotFound)
    }

    /// Where clients reach this server: `server.public_url`, else the request's `Host`.
    fn origin(&self) -> String {
        let base = &self.app.config.server.public_url;
        if base.is_empty() {
            format!("http://{}", self.ctx.header("host").unwrap_or("localhost"))
        } else {
            base.trim_end_matches('/').to_string()
        }
    }

    /// Counts a report generation or a dashboard refresh against the caller's hourly
    /// generation limit (one counter for both).
    fn limit_generation(&self) -> Result<(), ApiError> {
        let now = crate::domain::now();
        let limit = self.app.config.rate_limits.generation_per_hour;
        self.authorized()?
            .principal()
            .rates
            .generation
            .hit(now, limit)
            .map(|_| ())
            .map_err(|info| {
                crate::telemetry::throttled("generation");
                ApiError::Throttled {
                    message: format!(
                        "more than {limit} report generations and dashboard refreshes this hour"
                    ),
                    retry_after: (info.reset - now).max(1) as u64,
                }
            })
    }

    fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        super::body::parse_json(&self.body)
    }

    /// The request as the maker of a change: its caller, address and user agent.
    fn actor(&self) -> Actor {
        Actor::request(
            self.auth.as_ref().map(|a| a.principal().clone()),
            self.ctx.client_ip.map(|ip| ip.to_string()),
            self.ctx.user_agent().map(str::to_string),
        )
    }
}

pub async fn dispatch(endpoint: Endpoint, call: Call<'_>) -> Result<Response, ApiError> {
    use Endpoint::*;
    match endpoint {
        Home => {
            // The answer depends on Accept: caches must keep the two apart.
            let mut response = if super::wants_page(call.ctx) {
                super::pages::page(super::pages::Page::App, call.ctx)?
            } else {
                reply::redirect("/login")
            };
            response.headers_mut().insert(
                warp::http::header::VARY,
                warp::http::HeaderValue::from_static("Accept"),
            );
            Ok(response)
        }
        Schema => Ok(system::schema()),
        Healthz => Ok(system::healthz()),
        Readyz => system::readyz(call.app, call.ctx.arrived).await,
        Login => auth::login(call).await,
        Refresh => auth::refresh(call).await,
        Logout => auth::logout(call).await,
        Me => auth::me(call),
        ChangePassword => auth::change_password(call).await,
        ListSessions => sessions::list(call).await,
        RevokeSession => sessions::revoke(call).await,
        MfaSetup => mfa::setup(call).await,
        MfaConfirm => mfa::confirm(call).await,
        MfaDisable => mfa::disable(call).await,
        ResetMfa => users::reset_mfa(call).await,
        CreateKey => api_keys::create(call).await,
        ListKeys => api_keys::list(call).await,
        GetKey => api_keys::get(call).await,
        RevokeKey => api_keys::revoke(call).await,
        RotateKey => api_keys::rotate(call).await,
        UpdateKey => api_keys::update(call).await,
        LeakReport => api_keys::leak_report(call).await,
        Verify => api_keys::verify(call),
        ListDataSources => data_sources::list(call).await,
        CreateDataSource => data_sources::create(call).await,
        GetDataSource => data_sources::get(call).await,
        DeleteDataSource => data_sources::delete(call).await,
        ListReports => reports::list(call).await,
        GenerateReport => reports::generate(call).await,
        GetReport => reports::get(call).await,
        DeleteReport => reports::delete(call).await,
        ListDashboards => dashboards::list(call).await,
        CreateDashboard => dashboards::create(call).await,
        GetDashboard => dashboards::get(call).await,
        UpdateDashboard => dashboards::update(call).await,
        DeleteDashboard => dashboards::delete(call).await,
        RefreshDashboard => dashboards::refresh(call).await,
        Usage => usage::get(call).await,
        ListGoals => goals::list(call).await,
        CreateGoal => goals::create(call).await,
        GetGoal => goals::get(call).await,
        UpdateGoal => goals::update(call).await,
        GoalProgress => goals::progress(call).await,
        RecordProgress => goals::record_progress(call).await,
        CreateLink(kind) => public_links::create(call, kind).await,
        ShowLink(kind) => public_links::show(call, kind).await,
        RevokeLink(kind) => public_links::revoke(call, kind).await,
        PublicRead(kind) => public_links::read(call, kind).await,
        SharePage => public_links::page(call).await,
        Page(page) => super::pages::page(page, call.ctx),
        Asset => super::pages::asset(call.params.token.as_deref(), call.ctx),
        ListUsers => users::list(call).await,
        CreateUser => users::create(call).await,
        GetUser => users::get(call).await,
        UpdateUser => users::update(call).await,
        Organization => organization::get(call).await,
        RenameOrganization => organization::rename(call).await,
        TransferOwnership => organization::transfer(call).await,
        AuditLog => audit_log::list(call).await,
        AuditExport => audit_log::export(call).await,
        AuditVerify => audit_log::verify(call).await,
        SsoProviders => sso_sign_in::providers(call).await,
        SsoStart => sso_sign_in::start(call).await,
        SsoCallback => sso_sign_in::callback(call).await,
        SsoExchange => sso_sign_in::exchange(call).await,
        ListProviders => sso::list(call).await,
        CreateProvider => sso::create(call).await,
        GetProvider => sso::get(call).await,
        UpdateProvider => sso::update(call).await,
        DeleteProvider => sso::delete(call).await,
        SyncProvider => sso::sync(call).await,
    }
}

/// A text field, cleaned and bounded; a problem is added to `errors` under `field`.
fn text(
    errors: &mut crate::error::FieldErrors,
    field: &str,
    raw: &str,
    min: usize,
    max: usize,
) -> String {
    crate::domain::clean_text(raw, min, max)
        .map_err(|e| errors.insert(field.to_string(), vec![e.describe()]))
        .unwrap_or_default()
}

/// `GET` of a list of the caller's organization: `query(conn, organization, offset, limit)`
/// reads one page and the count, each row becomes its DTO.
async fn org_page<Row, Dto, Q>(call: Call<'_>, query: Q) -> Result<Response, ApiError>
where
    Row: Send + 'static,
    Dto: Serialize + From<Row>,
    Q: FnOnce(
            &crate::store::Db<'_>,
            crate::domain::Id,
            u64,
            u64,
        ) -> crate::store::StoreResult<(u64, Vec<Row>)>
        + Send
        + 'static,
{
    let page = PageRequest::from(call.ctx)?;
    let org = call.organization_id()?;
    let (offset, size) = (page.offset(), page.size);
    let (count, rows) = call
        .app
        .store
        .read(move |c| query(c, org, offset, size))
        .await?;
    let results: Vec<Dto> = rows.into_iter().map(Dto::from).collect();
    Ok(reply::ok(&page.wrap(&call, count, results)?))
}

/// `GET` lists: `?page=1&page_size=20` (at most 100), DRF's envelope, `404` past the end.
pub struct PageRequest {
    pub page: u64,
    pub size: u64,
    /// `(page - 1) * size`, computed checked: a page whose first row lies beyond `u64` is
    /// past the end of any list.
    offset: u64,
}

#[derive(Serialize)]
pub struct Page<T: Serialize> {
    count: u64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<T>,
}

impl PageRequest {
    pub fn from(ctx: &RequestCtx) -> Result<Self, ApiError> {
        let page = match ctx.query_param("page") {
            None => 1,
            Some(p) => p
                .parse::<u64>()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or(ApiError::NotFound)?,
        };
        let size = match ctx.query_param("page_size") {
            None => 20,
            Some(s) => s
                .parse::<u64>()
                .ok()
                .filter(|s| *s >= 1)
                .ok_or_else(|| ApiError::field("page_size", "must be a positive integer"))?
                .min(100),
        };
        Self::new(page, size)
    }

    /// A page of `size` rows (1 to 100); `404` for a page that starts beyond any list.
    pub fn new(page: u64, size: u64) -> Result<Self, ApiError> {
        let offset = page
            .checked_sub(1)
            .and_then(|before| before.checked_mul(size))
            .filter(|offset| i64::try_from(*offset).is_ok())
            .ok_or(ApiError::NotFound)?;
        Ok(PageRequest { page, size, offset })
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Wraps one page of `results` out of `count`.
    pub fn wrap<T: Serialize>(
        &self,
        call: &Call<'_>,
        count: u64,
        results: Vec<T>,
    ) -> Result<Page<T>, ApiError> {
        if self.page > 1 && self.offset() >= count {
            return Err(ApiError::NotFound);
        }
        let link = |page: u64| self.link(call, page);
        Ok(Page {
            count,
            next: (self.offset().saturating_add(self.size) < count).then(|| link(self.page + 1)),
            previous: (self.page > 1).then(|| link(self.page - 1)),
            results,
        })
    }

    fn link(&self, call: &Call<'_>, page: u64) -> String {
        let origin = call.origin();
        let kept: Vec<&str> = call
            .ctx
            .query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("page=") && !p.starts_with("page_size="))
            .collect();
        let mut query = kept.join("&");
        if !query.is_empty() {
            query.push('&');
        }
        format!(
            "{origin}{}?{query}page={page}&page_size={}",
            call.ctx.path, self.size
        )
    }
}

#[cfg(test)]
mod tests {
    use super::PageRequest;

    #[test]
    fn a_page_beyond_any_list_is_not_found_rather_than_wrapped() {
        assert_eq!(PageRequest::new(3, 20).unwrap().offset(), 40);
        // (page - 1) * size wraps to 0 in u64 for this page: it must not read page 1.
        let wrapping = (u64::MAX / 20) + 2;
        assert!(matches!(
            PageRequest::new(wrapping, 20),
            Err(crate::error::ApiError::NotFound)
        ));
        assert!(PageRequest::new(u64::MAX, 100).is_err());
        assert!(PageRequest::new(0, 20).is_err());
    }
}

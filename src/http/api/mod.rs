//! The handlers, one file per area, and `endpoints`, which declares each endpoint once.
//! Shared here: pagination, audit entries, the user object, the caller's organization and the
//! hourly generation limit.

mod api_keys;
mod audit_log;
mod auth;
mod dashboards;
mod data_sources;
pub mod docs;
mod endpoints;
mod goals;
mod mfa;
mod organization;
mod passkeys;
mod public_links;
mod reports;
mod service_accounts;
mod sessions;
mod sso;
mod sso_sign_in;
mod system;
mod usage;
mod users;

use bytes::Bytes;
use serde::Serialize;

use crate::error::ApiError;
use crate::ops::AppState;
use crate::ops::{Actor, Caller, Client};
use crate::store::{Listing, Order};

use super::reply::{self, Response};
use super::request::RequestCtx;
use super::router::Params;

pub(in crate::http) use endpoints::{dispatch, ROUTES};
pub use endpoints::{doc, Endpoint};

/// What a public link shares.
pub use crate::store::public_links::Shared;

/// Everything a handler may use of one request. A guarded endpoint's handler also takes the
/// `Caller` its guard built (`endpoints.rs`).
pub struct Call<'a> {
    pub app: &'a AppState,
    pub ctx: &'a RequestCtx,
    pub params: Params,
    pub body: Bytes,
}

impl Call<'_> {
    fn id(&self) -> Result<crate::domain::Id, ApiError> {
        self.params.id.ok_or(ApiError::NotFound)
    }

    /// The path's `{key_id}`.
    fn key_id(&self) -> Result<crate::domain::Id, ApiError> {
        self.params.key_id.ok_or(ApiError::NotFound)
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
    fn limit_generation(&self, caller: &Caller) -> Result<(), ApiError> {
        let now = crate::domain::now();
        let limit = self.app.config.rate_limits.generation_per_hour;
        caller
            .principal()
            .rates
            .hit_generation(now, limit)
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

    /// A request without credentials (a login, a refresh, a sign-in) as the maker of a
    /// change: its address and user agent. A guarded handler's changes are its `Caller`'s.
    fn anonymous(&self) -> Actor {
        Actor::Anonymous(Client {
            ip: self.ctx.client_ip,
            user_agent: self.ctx.user_agent().map(str::to_string),
        })
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

/// `GET` of a list of the caller's organization, ordered as `sortable` allows:
/// `query(conn, organization, listing)` reads one page and the count (in one statement, see
/// `store::list`, but where `reads` says it reads more), each row becomes its DTO.
async fn org_page<Row, Dto, Q>(
    call: Call<'_>,
    caller: Caller,
    sortable: &Sortable,
    reads: Reads,
    query: Q,
) -> Result<Response, ApiError>
where
    Row: Send + 'static,
    Dto: Serialize + From<Row>,
    Q: FnOnce(
            &crate::store::Db<'_>,
            crate::domain::Id,
            &Listing,
        ) -> crate::store::StoreResult<(u64, Vec<Row>)>
        + Send
        + 'static,
{
    let page = PageRequest::from(call.ctx)?;
    let listing = page.listing(sortable)?;
    let org = caller.organization_id();
    let store = &call.app.store;
    let (count, rows) = match reads {
        Reads::OneStatement => {
            store
                .read_statement(move |c| query(c, org, &listing))
                .await?
        }
        Reads::More => store.read(move |c| query(c, org, &listing)).await?,
    };
    let results: Vec<Dto> = rows.into_iter().map(Dto::from).collect();
    Ok(reply::ok(&page.wrap(&call, count, results)?))
}

/// What a list's query runs: its one statement (`store::list`), or more, which must share a
/// snapshot (a goal's milestones).
enum Reads {
    OneStatement,
    More,
}

/// The fields a list may be ordered by (`?ordering=field` or `-field`, DRF's convention),
/// each with the column or expression it orders by, and the list's order without one.
/// What `?search=` looks in, for the documentation, is `searched`.
pub struct Sortable {
    pub searched: &'static str,
    pub fields: &'static [(&'static str, &'static str)],
    pub default: Order,
}

impl Sortable {
    /// The newest first by default, and `fields` on request.
    pub const fn newest_first(
        searched: &'static str,
        fields: &'static [(&'static str, &'static str)],
    ) -> Self {
        Sortable {
            searched,
            fields,
            default: Order {
                column: "id",
                descending: true,
            },
        }
    }

    /// The order `ordering` names, or a `400` naming `ordering` and the fields allowed.
    fn order(&self, ordering: Option<&str>) -> Result<Order, ApiError> {
        let Some(ordering) = ordering.map(str::trim).filter(|o| !o.is_empty()) else {
            return Ok(self.default);
        };
        let (field, descending) = match ordering.strip_prefix('-') {
            Some(field) => (field, true),
            None => (ordering, false),
        };
        self.fields
            .iter()
            .find(|(name, _)| *name == field)
            .map(|&(_, column)| Order { column, descending })
            .ok_or_else(|| {
                let names: Vec<&str> = self.fields.iter().map(|(name, _)| *name).collect();
                ApiError::field(
                    "ordering",
                    format!(
                        "must be one of {} (with - before it for the reverse order)",
                        names.join(", ")
                    ),
                )
            })
    }
}

/// The longest `search` a list takes.
const SEARCH_MAX: usize = 200;

/// `GET` lists: `?page=1&page_size=20` (at most 100), DRF's envelope, `404` past the end;
/// `search` and `ordering` where the list takes them.
pub struct PageRequest {
    pub page: u64,
    pub size: u64,
    /// `(page - 1) * size`, computed checked: a page whose first row lies beyond `u64` is
    /// past the end of any list.
    offset: u64,
    search: Option<String>,
    ordering: Option<String>,
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
        let search = match ctx.query_param("search") {
            Some(s) if s.chars().count() > SEARCH_MAX => {
                return Err(ApiError::field(
                    "search",
                    format!("must be at most {SEARCH_MAX} characters"),
                ))
            }
            Some(s) if s.chars().any(char::is_control) => {
                return Err(ApiError::field(
                    "search",
                    "must not hold control characters",
                ))
            }
            Some(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            None => None,
        };
        Ok(PageRequest {
            search,
            ordering: ctx.query_param("ordering"),
            ..Self::new(page, size)?
        })
    }

    /// The page with its search, in the order `?ordering` asks of `sortable`.
    pub fn listing(&self, sortable: &Sortable) -> Result<Listing, ApiError> {
        Ok(Listing {
            offset: self.offset,
            limit: self.size,
            search: self.search.clone(),
            order: sortable.order(self.ordering.as_deref())?,
        })
    }

    /// A page of `size` rows (1 to 100); `404` for a page that starts beyond any list.
    pub fn new(page: u64, size: u64) -> Result<Self, ApiError> {
        let offset = page
            .checked_sub(1)
            .and_then(|before| before.checked_mul(size))
            .filter(|offset| i64::try_from(*offset).is_ok())
            .ok_or(ApiError::NotFound)?;
        Ok(PageRequest {
            page,
            size,
            offset,
            search: None,
            ordering: None,
        })
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

//! The admin web pages and their scripts and stylesheet, compiled into the binary from
//! `assets/` by rust-embed. Pages are static: they talk to the JSON API with the tokens they
//! keep in `sessionStorage`. Every answer carries an `ETag` (from the file's SHA-256) and is
//! revalidated (`Cache-Control: no-cache`), so an upgrade is seen at once and an unchanged file
//! costs a `304`.

use std::borrow::Cow;

use bytes::Bytes;
use rust_embed::RustEmbed;
use warp::http::{header, HeaderValue, StatusCode};

use crate::error::ApiError;

use super::reply::Response;
use super::request::RequestCtx;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// A page of the contract's section 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Login,
    ApiKeys,
    Security,
    SsoProviders,
    ServiceAccounts,
    SecurityPolicy,
    Users,
    Audit,
    ApiDocs,
    /// The overview, the BI content and the Settings area's other pages: one shell whose
    /// script draws what the path names.
    App,
}

impl Page {
    fn file(self) -> &'static str {
        match self {
            Page::Login => "login.html",
            Page::ApiKeys => "api-keys.html",
            Page::Security => "security.html",
            Page::SsoProviders => "sso.html",
            Page::ServiceAccounts => "service-accounts.html",
            Page::SecurityPolicy => "policy.html",
            Page::Users => "users.html",
            Page::Audit => "audit.html",
            Page::ApiDocs => "api-docs.html",
            Page::App => "app.html",
        }
    }
}

/// Scripts from this server only, no inline code, no framing; images may be data: URLs (the
/// MFA QR code).
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

pub fn page(page: Page, ctx: &RequestCtx) -> Result<Response, ApiError> {
    let mut response = serve(page.file(), ctx)?;
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    Ok(response)
}

/// A page for a path that names none: `404` in HTML, under the pages' policy.
pub fn not_found(ctx: &RequestCtx) -> Response {
    html_404("404.html", ctx)
}

/// `/s/{token}` of a link that was revoked, replaced or expired, or never was: `404` in HTML.
pub fn link_gone(ctx: &RequestCtx) -> Response {
    html_404("link-gone.html", ctx)
}

/// An embedded page as a `404`, under the pages' policy.
/// (No `ETag`: a `304` of it would be relabelled and shown blank.)
fn html_404(file: &str, ctx: &RequestCtx) -> Response {
    let Some(embedded) = Assets::get(file) else {
        return super::reply::error(&ApiError::NotFound, &ctx.id);
    };
    let body = match embedded.data {
        Cow::Borrowed(bytes) => Bytes::from_static(bytes),
        Cow::Owned(bytes) => Bytes::from(bytes),
    };
    let mut response = Response::new(body.into());
    *response.status_mut() = StatusCode::NOT_FOUND;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    response
}

/// `/assets/{file}`: scripts and the stylesheet. Pages themselves are only served at their
/// own paths.
pub fn asset(file: Option<&str>, ctx: &RequestCtx) -> Result<Response, ApiError> {
    match file {
        Some(file) if !file.ends_with(".html") => serve(file, ctx),
        _ => Err(ApiError::NotFound),
    }
}

fn serve(file: &str, ctx: &RequestCtx) -> Result<Response, ApiError> {
    let content_type = content_type(file).ok_or(ApiError::NotFound)?;
    let embedded = Assets::get(file).ok_or(ApiError::NotFound)?;
    let hash = embedded.metadata.sha256_hash();
    let etag = format!("\"{}\"", crate::domain::hex(&hash[..12]));
    let unchanged = ctx
        .header("if-none-match")
        .is_some_and(|sent| sent.split(',').any(|tag| tag.trim() == etag));
    let mut response = if unchanged {
        let mut r = Response::new(Vec::new().into());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        // Compiled-in files are served from the binary's memory, not copied.
        let body = match embedded.data {
            Cow::Borrowed(bytes) => Bytes::from_static(bytes),
            Cow::Owned(bytes) => Bytes::from(bytes),
        };
        let mut r = Response::new(body.into());
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    Ok(response)
}

fn content_type(file: &str) -> Option<&'static str> {
    let (_, extension) = file.rsplit_once('.')?;
    Some(match extension {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::permission::SCOPES;

    #[test]
    fn every_page_and_every_file_it_loads_is_embedded() {
        for page in [
            Page::Login,
            Page::ApiKeys,
            Page::Security,
            Page::SsoProviders,
            Page::ServiceAccounts,
            Page::SecurityPolicy,
            Page::Users,
            Page::Audit,
            Page::ApiDocs,
            Page::App,
        ]
        .map(Page::file)
        .into_iter()
        .chain(["404.html", "link-gone.html"])
        {
            let html = Assets::get(page).expect("page embedded");
            let html = std::str::from_utf8(&html.data).unwrap();
            for reference in html.split("\"/assets/").skip(1) {
                let file = reference.split('"').next().unwrap();
                assert!(Assets::get(file).is_some(), "{page}: /assets/{file}");
                assert!(content_type(file).is_some(), "{file}");
            }
            assert!(
                !html.contains("<script>") && !html.contains(" style="),
                "{page}: inline code or style would be refused by the policy"
            );
        }
    }

    /// The strings of `const NAME = [...]` in an embedded script.
    fn js_list(file: &str, name: &str) -> Vec<String> {
        let script = Assets::get(file).unwrap();
        let script = std::str::from_utf8(&script.data).unwrap();
        let list = script.split(&format!("const {name} = [")).nth(1).unwrap();
        let list = list.split("];").next().unwrap();
        list.split(',')
            .map(|s| s.trim().trim_matches('"').to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    #[test]
    fn the_key_page_offers_exactly_the_server_scopes() {
        let server: Vec<&str> = SCOPES.iter().map(|s| s.as_str()).collect();
        assert_eq!(js_list("api-keys.js", "SCOPES"), server);
    }

    #[test]
    fn the_audit_page_offers_exactly_the_server_actions() {
        assert_eq!(js_list("audit.js", "ACTIONS"), crate::store::audit::ACTIONS);
    }
}

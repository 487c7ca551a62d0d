//! The route table (one row per pattern, generated from `api/endpoints.rs`), served under both
//! `/api/` and `/api/v1/`, with or without the final `/`. The table is compiled once into a `Router`: patterns split into
//! segments and grouped by their first one, so a request is split once and compared with the
//! few routes that share its first segment. A path that matches with another method is a
//! `405` naming the methods it has.

use std::collections::HashMap;

use warp::http::Method;

use crate::auth::principal::Guard;
use crate::domain::Id;

use super::api::Endpoint;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    fn of(method: &Method) -> Option<Verb> {
        match *method {
            Method::GET | Method::HEAD => Some(Verb::Get),
            Method::POST => Some(Verb::Post),
            Method::PATCH => Some(Verb::Patch),
            Method::DELETE => Some(Verb::Delete),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET, HEAD",
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }
}

/// Where a pattern lives: under `/api/` and `/api/v1/`, or at the root (health, pages, public links).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    Api,
    Root,
}

/// What the request body must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// Ignored if sent.
    NoBody,
    /// Required, `Content-Type: application/json`.
    Json,
    /// May be empty; if not, as `Json`.
    OptionalJson,
    /// As `Json`, up to `LARGE_BODY_BYTES` (a pasted text of 1 MiB, escaped in JSON).
    LargeJson,
}

/// The body limit of `LargeJson` routes (or `server.max_body_bytes` if larger).
pub const LARGE_BODY_BYTES: u64 = 4 << 20;

pub struct Route {
    pub verb: Verb,
    pub space: Space,
    /// Segments separated by `/`, no leading or trailing slash; `{id}` and `{key_id}` are
    /// positive integers, `{token}` any non-empty segment.
    pub pattern: &'static str,
    pub endpoint: Endpoint,
    pub guard: Guard,
    pub body: BodyKind,
}

/// Values taken from the path.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pub id: Option<Id>,
    /// A second id, of a key under its owner (`.../{id}/keys/{key_id}`).
    pub key_id: Option<Id>,
    pub token: Option<String>,
}

pub enum Match<'r> {
    Found(&'r Route, Params),
    /// The path exists, not with this method: the `Allow` header value.
    WrongMethod(String),
    NotFound,
}

/// One segment of a compiled pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment<'t> {
    Literal(&'t str),
    Id,
    KeyId,
    Token,
}

impl<'t> Segment<'t> {
    fn parse(text: &'t str) -> Self {
        match text {
            "{id}" => Segment::Id,
            "{key_id}" => Segment::KeyId,
            "{token}" => Segment::Token,
            literal => Segment::Literal(literal),
        }
    }
}

struct Compiled<'t> {
    route: &'t Route,
    segments: Vec<Segment<'t>>,
}

/// The compiled table. Every pattern starts with a literal segment (tested for the real
/// table), which is the key of its group.
pub struct Router<'t> {
    groups: HashMap<(Space, &'t str), Vec<Compiled<'t>>>,
    longest: usize,
}

/// The most segments any path is split into; longer paths match nothing.
const MAX_SEGMENTS: usize = 8;

impl<'t> Router<'t> {
    pub fn new(table: &'t [Route]) -> Self {
        let mut groups: HashMap<(Space, &'t str), Vec<Compiled<'t>>> = HashMap::new();
        let mut longest = 0;
        for route in table {
            let segments: Vec<Segment<'t>> = route.pattern.split('/').map(Segment::parse).collect();
            longest = longest.max(segments.len());
            let head = route.pattern.split('/').next().unwrap_or("");
            groups
                .entry((route.space, head))
                .or_default()
                .push(Compiled { route, segments });
        }
        Router {
            groups,
            longest: longest.min(MAX_SEGMENTS),
        }
    }

    pub fn find(&self, method: &Method, path: &str) -> Match<'t> {
        let (space, rest) = split_space(path);
        let Some(rest) = rest else {
            return Match::NotFound;
        };
        let mut parts = [""; MAX_SEGMENTS];
        let mut count = 0;
        for part in rest.split('/') {
            if count == self.longest {
                return Match::NotFound;
            }
            parts[count] = part;
            count += 1;
        }
        let parts = &parts[..count];
        let Some(candidates) = self.groups.get(&(space, parts[0])) else {
            return Match::NotFound;
        };
        let verb = Verb::of(method);
        let mut allowed: Vec<Verb> = Vec::new();
        for candidate in candidates {
            let Some(params) = match_segments(&candidate.segments, parts) else {
                continue;
            };
            if Some(candidate.route.verb) == verb {
                return Match::Found(candidate.route, params);
            }
            if !allowed.contains(&candidate.route.verb) {
                allowed.push(candidate.route.verb);
            }
        }
        if allowed.is_empty() {
            Match::NotFound
        } else {
            let mut allow: Vec<&str> = allowed.iter().map(|v| v.as_str()).collect();
            allow.push("OPTIONS");
            Match::WrongMethod(allow.join(", "))
        }
    }
}

/// `/api/v1/x/` and `/api/x` are both `(Api, "x")`; `/healthz` is `(Root, "healthz")`.
fn split_space(path: &str) -> (Space, Option<&str>) {
    let (space, rest) = if let Some(rest) = path.strip_prefix("/api/v1/") {
        (Space::Api, rest)
    } else if let Some(rest) = path.strip_prefix("/api/") {
        (Space::Api, rest)
    } else if let Some(rest) = path.strip_prefix('/') {
        (Space::Root, rest)
    } else {
        return (Space::Root, None);
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    // An empty segment (`//`) or a leftover slash matches nothing.
    if rest.starts_with('/') || rest.contains("//") {
        return (space, None);
    }
    (space, Some(rest))
}

fn match_segments(pattern: &[Segment<'_>], parts: &[&str]) -> Option<Params> {
    if pattern.len() != parts.len() {
        return None;
    }
    let mut params = Params::default();
    for (expected, actual) in pattern.iter().zip(parts) {
        match *expected {
            Segment::Id => {
                let id: Id = actual.parse().ok().filter(|id| *id > 0)?;
                params.id = Some(id);
            }
            Segment::KeyId => {
                params.key_id = Some(actual.parse().ok().filter(|id: &Id| *id > 0)?);
            }
            Segment::Token => {
                if actual.is_empty() {
                    return None;
                }
                params.token = Some(actual.to_string());
            }
            Segment::Literal(literal) if literal == *actual => {}
            Segment::Literal(_) => return None,
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<Route> {
        let r = |verb, space, pattern, endpoint| Route {
            verb,
            space,
            pattern,
            endpoint,
            guard: Guard::Public,
            body: BodyKind::NoBody,
        };
        vec![
            r(Verb::Get, Space::Root, "healthz", Endpoint::Healthz),
            r(Verb::Get, Space::Api, "things/{id}", Endpoint::Readyz),
            r(Verb::Delete, Space::Api, "things/{id}", Endpoint::Healthz),
            r(Verb::Get, Space::Root, "s/{token}", Endpoint::Readyz),
        ]
    }

    fn found(path: &str) -> Option<Params> {
        let table = table();
        match Router::new(&table).find(&Method::GET, path) {
            Match::Found(_, p) => Some(p),
            _ => None,
        }
    }

    #[test]
    fn both_prefixes_and_the_final_slash_are_optional() {
        for path in [
            "/api/things/7/",
            "/api/things/7",
            "/api/v1/things/7/",
            "/api/v1/things/7",
        ] {
            assert_eq!(found(path).and_then(|p| p.id), Some(7), "{path}");
        }
        assert!(found("/healthz").is_some() && found("/healthz/").is_some());
        assert!(found("/api/healthz").is_none());
        assert!(found("/things/7").is_none());
    }

    #[test]
    fn ids_are_positive_integers_and_extra_segments_do_not_match() {
        assert!(found("/api/things/abc/").is_none());
        assert!(found("/api/things/0/").is_none());
        assert!(found("/api/things/-1/").is_none());
        assert!(found("/api/things/7/x/").is_none());
        assert!(found("/api/things//").is_none());
        assert_eq!(
            found("/s/abc").and_then(|p| p.token).as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn a_known_path_with_another_method_is_405_with_allow() {
        let table = table();
        let router = Router::new(&table);
        match router.find(&Method::PUT, "/api/things/7/") {
            Match::WrongMethod(allow) => assert_eq!(allow, "GET, HEAD, DELETE, OPTIONS"),
            _ => panic!("expected 405"),
        }
        assert!(matches!(
            router.find(&Method::PUT, "/nowhere"),
            Match::NotFound
        ));
        assert!(matches!(
            router.find(&Method::GET, "/api/a/b/c/d/e/f/g/h/i/j"),
            Match::NotFound
        ));
    }
}

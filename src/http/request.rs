//! `RequestCtx`: what every handler may read of a request besides its body: method, path,
//! query, headers, the client's address and the request id.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use warp::http::header::HeaderName;
use warp::http::{HeaderMap, HeaderValue, Method};

/// `X-Request-Id`, read from requests and written on every response.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id: the client's own when it is sane, otherwise a fresh random one. Kept as the
/// header value it is sent back as.
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let sent = headers.get(X_REQUEST_ID).filter(|v| {
            let v = v.as_bytes();
            !v.is_empty()
                && v.len() <= 64
                && v.iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
        match sent {
            Some(id) => RequestId(id.clone()),
            None => RequestId::random(),
        }
    }

    fn random() -> Self {
        let text = crate::domain::hex(&rand::random::<[u8; 8]>());
        // Sixteen hex digits are always a valid header value.
        RequestId(HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("0")))
    }

    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Only the characters checked above, or hex digits: always visible ASCII.
        self.0.to_str().unwrap_or("-")
    }
}

pub struct RequestCtx {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The client: the socket's peer, or the X-Forwarded-For entry a trusted proxy added.
    /// `None` when that entry cannot be read (`problem` says so): never the proxy's address.
    pub client_ip: Option<IpAddr>,
    pub id: RequestId,
    /// When the request's headers were in: the start of its latency, and the instant a
    /// catch-up read of the feed must follow (`ops::feed::ensure_current`).
    pub arrived: std::time::Instant,
    /// The query's parameters, percent-decoded, in order.
    params: Vec<(String, String)>,
    /// What makes the request unreadable before any route looks at it: a query parameter that
    /// is not text, or an `X-Forwarded-For` that names no client. Answered `400 invalid`.
    problem: Option<Unread>,
}

impl RequestCtx {
    pub fn new(
        method: Method,
        path: String,
        query: Option<String>,
        headers: HeaderMap,
        peer: Option<SocketAddr>,
        trusted_proxies: &[IpNet],
    ) -> Self {
        let arrived = std::time::Instant::now();
        let (params, mut problem) = parse_query(query.as_deref());
        let client_ip = match client_ip(peer.map(|p| p.ip()), &headers, trusted_proxies) {
            Ok(ip) => ip,
            Err(Unreadable) => {
                problem.get_or_insert((
                    "X-Forwarded-For".into(),
                    "the entry that names the client is not an IP address",
                ));
                None
            }
        };
        let id = RequestId::from_headers(&headers);
        RequestCtx {
            method,
            path,
            query,
            headers,
            client_ip,
            id,
            arrived,
            params,
            problem,
        }
    }

    /// `400 invalid` naming the parameter or header that cannot be read, if any.
    pub fn check_readable(&self) -> Result<(), crate::error::ApiError> {
        match &self.problem {
            Some((field, problem)) => Err(crate::error::ApiError::field(field, *problem)),
            None => Ok(()),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.header("user-agent")
    }

    /// The value of the cookie `name` (the first `Cookie` header's).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.header("cookie")?
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// The value of `name` in the query string (first occurrence, percent-decoded).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }
}

/// A parameter or header that cannot be read, and what is wrong with it.
type Unread = (String, &'static str);

/// The query's parameters, decoded, and the first one that is not text (bytes that are not
/// UTF-8, or a NUL, which no database column holds) with what is wrong with it.
fn parse_query(query: Option<&str>) -> (Vec<(String, String)>, Option<Unread>) {
    let mut params = Vec::new();
    let mut problem = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (percent_decode(key), percent_decode(value));
        let name = String::from_utf8_lossy(&key).into_owned();
        let text = match (String::from_utf8(key), String::from_utf8(value)) {
            (Ok(key), Ok(value)) => (key, value),
            _ => {
                problem.get_or_insert((name, "must be UTF-8 text"));
                continue;
            }
        };
        if text.0.contains('\0') || text.1.contains('\0') {
            problem.get_or_insert((name, "must not contain a NUL character"));
            continue;
        }
        params.push(text);
    }
    (params, problem)
}

/// An IPv4 peer of a dual-stack socket (`::ffff:a.b.c.d`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`), as its raw bytes; anything else (other bytes than visible ASCII, a
/// word, an empty hop) is not an address.
fn forwarded_hop(raw: &[u8]) -> Option<IpAddr> {
    let hop = std::str::from_utf8(raw.trim_ascii()).ok()?;
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// An `X-Forwarded-For` whose entry in the client's place cannot be read.
#[derive(Debug, PartialEq, Eq)]
struct Unreadable;

/// Walks X-Forwarded-For (every header line, in order, read as raw bytes) from the right while
/// the hop is a trusted proxy: the first untrusted address is the client. An entry that cannot
/// be read in that walk is `Unreadable`: the request is never attributed to the proxy that
/// relayed it. With no trusted proxies, or from an untrusted peer, the header is ignored; from
/// a trusted peer without the header, the peer itself is the client.
fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted_proxies: &[IpNet],
) -> Result<Option<IpAddr>, Unreadable> {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    let Some(peer) = peer.map(canonical) else {
        return Ok(None);
    };
    if !trusted(&peer) {
        return Ok(Some(peer));
    }
    let lines: Vec<&[u8]> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if lines.is_empty() {
        return Ok(Some(peer));
    }
    let mut client = peer;
    for hop in lines
        .iter()
        .rev()
        .flat_map(|line| line.rsplit(|b| *b == b','))
    {
        client = forwarded_hop(hop).map(canonical).ok_or(Unreadable)?;
        if !trusted(&client) {
            break;
        }
    }
    Ok(Some(client))
}

fn percent_decode(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, v.parse().unwrap());
        }
        map
    }

    fn net(text: &str) -> IpNet {
        crate::config::parse_ip_net(text).unwrap()
    }

    #[test]
    fn mapped_peers_ports_and_ranges_are_understood() {
        let h = headers(&[("x-forwarded-for", "203.0.113.7:51234")]);
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(
            client_ip(Some(mapped), &h, &[net("10.0.0.0/8")]),
            Ok(Some("203.0.113.7".parse().unwrap())),
            "a mapped IPv4 peer matches its IPv4 range; the port is dropped"
        );
        assert_eq!(
            client_ip(Some(mapped), &h, &[]),
            Ok(Some("10.1.2.3".parse().unwrap())),
            "the client is reported in its IPv4 form"
        );
        let h = headers(&[("x-forwarded-for", "[2001:db8::5]:443, 10.9.9.9")]);
        assert_eq!(
            client_ip(Some("10.0.0.1".parse().unwrap()), &h, &[net("10.0.0.0/8")]),
            Ok(Some("2001:db8::5".parse().unwrap()))
        );
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 10.0.0.9")]);
        assert_eq!(client_ip(Some(peer), &h, &[]), Ok(Some(peer)));
        let proxy = net("10.0.0.2");
        assert_eq!(
            client_ip(Some(peer), &h, &[proxy]),
            Ok(Some("10.0.0.9".parse().unwrap())),
            "the last hop is what the trusted proxy saw"
        );
        let second = net("10.0.0.9");
        assert_eq!(
            client_ip(Some(peer), &h, &[proxy, second]),
            Ok(Some("1.2.3.4".parse().unwrap()))
        );
    }

    fn raw(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", HeaderValue::from_bytes(v).unwrap());
        }
        map
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_entry_read_from_raw_bytes() {
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let proxies = [net("127.0.0.1"), net("10.0.0.0/8")];
        let outsider: IpAddr = "203.0.113.9".parse().unwrap();
        for ok in [
            &[&b"203.0.113.9"[..]][..],
            &[b"\x80, 203.0.113.9"],
            &[b"garbage, 203.0.113.9, 10.1.1.1"],
            &[b"\xff\xfe", b"203.0.113.9"],
            &[b"203.0.113.9", b"10.0.0.7"],
            &[b" 203.0.113.9:443 "],
        ] {
            assert_eq!(
                client_ip(Some(peer), &raw(ok), &proxies),
                Ok(Some(outsider)),
                "{ok:?}"
            );
        }
        for bad in [
            &[&b"203.0.113.9, garbage"[..]][..],
            &[b"203.0.113.9, \x80"],
            &[b""],
            &[b"203.0.113.9,"],
            &[b"203.0.113.9,,10.0.0.1"],
            &[b"203.0.113.9", b"10.0.0.1 x"],
            &[b"unknown"],
            &[b"203.0.113.9", b""],
        ] {
            assert_eq!(
                client_ip(Some(peer), &raw(bad), &proxies),
                Err(Unreadable),
                "{bad:?}"
            );
        }
        // Untrusted peers' headers are never read, whatever they hold.
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            client_ip(Some(stranger), &raw(&[b"\x80 garbage"]), &proxies),
            Ok(Some(stranger))
        );
        // Every hop trusted: the leftmost is where the request came from.
        assert_eq!(
            client_ip(Some(peer), &raw(&[b"10.0.0.2, 10.0.0.3"]), &proxies),
            Ok(Some("10.0.0.2".parse().unwrap()))
        );
        // No header: the trusted peer made the request itself.
        assert_eq!(
            client_ip(Some(peer), &HeaderMap::new(), &proxies),
            Ok(Some(peer))
        );
    }

    #[test]
    fn a_request_with_an_unreadable_forwarded_for_names_no_client() {
        let ctx = RequestCtx::new(
            Method::GET,
            "/".into(),
            None,
            raw(&[b"203.0.113.9, garbage"]),
            Some("127.0.0.1:5000".parse().unwrap()),
            &[net("127.0.0.1")],
        );
        assert_eq!(ctx.client_ip, None);
        assert!(ctx.check_readable().is_err());
    }

    #[test]
    fn query_parameters_that_are_not_text_are_named() {
        let problem = |q: &str| {
            RequestCtx::new(
                Method::GET,
                "/".into(),
                Some(q.into()),
                HeaderMap::new(),
                None,
                &[],
            )
            .problem
            .map(|(name, _)| name)
        };
        assert_eq!(problem("action=a%00b").as_deref(), Some("action"));
        assert_eq!(problem("a=1&x=%C3%28").as_deref(), Some("x"));
        assert_eq!(problem("page=%FF&b=%00").as_deref(), Some("page"));
        assert_eq!(problem("a=1&b=caf%C3%A9"), None);
    }

    #[test]
    fn request_ids_are_echoed_only_when_sane() {
        let id = RequestId::from_headers(&headers(&[("x-request-id", "abc-123_x.y")]));
        assert_eq!(id.as_str(), "abc-123_x.y");
        let id = RequestId::from_headers(&headers(&[("x-request-id", "bad id\"<script>")]));
        assert_eq!(id.as_str().len(), 16);
        assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        let other = RequestId::from_headers(&HeaderMap::new());
        assert_ne!(id.as_str(), other.as_str(), "fresh ids are random");
    }

    #[test]
    fn query_params_are_decoded() {
        let ctx = RequestCtx::new(
            Method::GET,
            "/".into(),
            Some("a=1&email=a%40b.c&x=hello+world&bad=%zz".into()),
            HeaderMap::new(),
            None,
            &[],
        );
        assert_eq!(ctx.query_param("email").as_deref(), Some("a@b.c"));
        assert_eq!(ctx.query_param("x").as_deref(), Some("hello world"));
        assert_eq!(ctx.query_param("bad").as_deref(), Some("%zz"));
        assert_eq!(ctx.query_param("missing"), None);
    }
}

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
    pub client_ip: Option<IpAddr>,
    pub id: RequestId,
    /// When the request's headers were in: the start of its latency, and the instant a
    /// catch-up read of the feed must follow (`ops::feed::ensure_current`).
    pub arrived: std::time::Instant,
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
        let client_ip = client_ip(peer.map(|p| p.ip()), &headers, trusted_proxies);
        let id = RequestId::from_headers(&headers);
        RequestCtx {
            method,
            path,
            query,
            headers,
            client_ip,
            id,
            arrived,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.header("user-agent")
    }

    /// The value of `name` in the query string (first occurrence, percent-decoded).
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then(|| percent_decode(value))
        })
    }
}

/// An IPv4 peer of a dual-stack socket (`::ffff:a.b.c.d`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`).
fn forwarded_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// Walks X-Forwarded-For from the right while the hop is a trusted proxy: the first untrusted
/// address is the client. With no trusted proxies the header is ignored.
fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted_proxies: &[IpNet],
) -> Option<IpAddr> {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    let mut client = canonical(peer?);
    if !trusted(&client) {
        return Some(client);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in forwarded.iter().rev() {
        let Some(ip) = forwarded_hop(hop).map(canonical) else {
            break;
        };
        client = ip;
        if !trusted(&ip) {
            break;
        }
    }
    Some(client)
}

fn percent_decode(raw: &str) -> String {
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
    String::from_utf8_lossy(&out).into_owned()
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
            Some("203.0.113.7".parse().unwrap()),
            "a mapped IPv4 peer matches its IPv4 range; the port is dropped"
        );
        assert_eq!(
            client_ip(Some(mapped), &h, &[]),
            Some("10.1.2.3".parse().unwrap()),
            "the client is reported in its IPv4 form"
        );
        let h = headers(&[("x-forwarded-for", "[2001:db8::5]:443, 10.9.9.9")]);
        assert_eq!(
            client_ip(Some("10.0.0.1".parse().unwrap()), &h, &[net("10.0.0.0/8")]),
            Some("2001:db8::5".parse().unwrap())
        );
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let peer: IpAddr = "10.0.0.2".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 10.0.0.9")]);
        assert_eq!(client_ip(Some(peer), &h, &[]), Some(peer));
        let proxy = net("10.0.0.2");
        assert_eq!(
            client_ip(Some(peer), &h, &[proxy]),
            Some("10.0.0.9".parse().unwrap()),
            "the last hop is what the trusted proxy saw"
        );
        let second = net("10.0.0.9");
        assert_eq!(
            client_ip(Some(peer), &h, &[proxy, second]),
            Some("1.2.3.4".parse().unwrap())
        );
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

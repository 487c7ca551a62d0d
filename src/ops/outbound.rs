//! The one HTTP client of the binary, for the requests claribi makes to the site's services
//! (an OpenID provider's discovery, keys and token endpoints; the key-expiry webhook): hyper's client on the server's
//! tokio, TLS by the same rustls settings as the directory (system roots plus `sso.ca_file`).
//!
//! Every request is bounded: a whole-request deadline, a body read up to a limit, and no
//! redirect followed (an identity provider's endpoints answer where discovery says).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// The largest answer read: discovery documents and key sets are a few KiB.
const MAX_BODY: usize = 1024 * 1024;
/// Connecting, sending and reading the whole answer.
const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct HttpClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// Why a request got no usable answer; the text names the address, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("{0}")]
    Request(String),
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
}

impl HttpClient {
    pub fn new(tls: Arc<rustls::ClientConfig>) -> HttpClient {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(DEADLINE));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build(connector);
        HttpClient { client }
    }

    /// `GET url`, the answer's body if its status is 200.
    pub async fn get(&self, url: &str) -> Result<Bytes, OutboundError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(url)
            .header(hyper::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| OutboundError::Request(format!("{url}: {e}")))?;
        self.send(url, request, &[StatusCode::OK])
            .await
            .map(|(_, b)| b)
    }

    /// `POST url` with a form body and an `Authorization` header; the status and body of a
    /// 200, or of a 400 or 401 (an OAuth error answer: JSON saying which).
    pub async fn post_form(
        &self,
        url: &str,
        authorization: &str,
        form: String,
    ) -> Result<(StatusCode, Bytes), OutboundError> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(hyper::header::ACCEPT, "application/json")
            .header(
                hyper::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(hyper::header::AUTHORIZATION, authorization)
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| OutboundError::Request(format!("{url}: {e}")))?;
        self.send(
            url,
            request,
            &[
                StatusCode::OK,
                StatusCode::BAD_REQUEST,
                StatusCode::UNAUTHORIZED,
            ],
        )
        .await
    }

    /// `POST url` with a JSON body and extra headers (a webhook); any 2xx answer is success.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<StatusCode, OutboundError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, "claribi");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| OutboundError::Request(format!("{url}: {e}")))?;
        const SUCCESS: [StatusCode; 4] = [
            StatusCode::OK,
            StatusCode::CREATED,
            StatusCode::ACCEPTED,
            StatusCode::NO_CONTENT,
        ];
        self.send(url, request, &SUCCESS).await.map(|(s, _)| s)
    }

    async fn send(
        &self,
        url: &str,
        request: Request<Full<Bytes>>,
        accepted: &[StatusCode],
    ) -> Result<(StatusCode, Bytes), OutboundError> {
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| OutboundError::Request(format!("{url}: {}", chain(&e))))?;
            let status = response.status();
            if !accepted.contains(&status) {
                return Err(OutboundError::Status {
                    url: url.to_string(),
                    status: status.as_u16(),
                });
            }
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| OutboundError::Request(format!("{url}: reading the answer: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(DEADLINE, exchange)
            .await
            .map_err(|_| {
                OutboundError::Request(format!("{url}: no answer within {}s", DEADLINE.as_secs()))
            })?
    }
}

/// An error with its causes, `a: b: c` (hyper's own says only "client error (Connect)").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

//! Metrics for Prometheus, through the `metrics` facade and its Prometheus exporter. The
//! recorder is installed only when `metrics.bind` is set; without it every call below is a
//! no-op of the facade. Label values are the route table's patterns and fixed words, never
//! raw paths, ids or anything a client chose, so the number of series is bounded.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use warp::http::Method;

const REQUESTS: &str = "claribi_http_requests_total";
const DURATION: &str = "claribi_http_request_duration_seconds";
const AUTH_FAILURES: &str = "claribi_auth_failures_total";
const LOGINS: &str = "claribi_logins_total";
const THROTTLED: &str = "claribi_throttled_total";
const SESSIONS: &str = "claribi_sessions_active";
const KEYS: &str = "claribi_api_keys_active";
const EXPIRING: &str = "claribi_api_keys_expiring";
const CONNECTIONS: &str = "claribi_http_connections_open";
const DATABASE_UNAVAILABLE: &str = "claribi_database_unavailable_total";
const LOG_LINES_DROPPED: &str = "claribi_log_lines_dropped_total";
const AUDIT_STREAM_LAG: &str = "claribi_audit_stream_lag_entries";

/// Lines the log writer dropped because standard error could not keep up.
static DROPPED_LOG_LINES: OnceLock<tracing_appender::non_blocking::ErrorCounter> = OnceLock::new();

/// Reads the log writer's count of dropped lines into the metrics from now on.
pub fn watch_dropped_log_lines(counter: tracing_appender::non_blocking::ErrorCounter) {
    let _ = DROPPED_LOG_LINES.set(counter);
}

/// Request latency buckets, in seconds: from a cached read (~0.1 ms) to a slow login.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same handle).
pub fn install() -> Result<&'static PrometheusHandle, String> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle);
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(DURATION.into()), BUCKETS)
        .map_err(|e| e.to_string())?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
    describe();
    Ok(HANDLE.get_or_init(|| handle))
}

fn describe() {
    describe_counter!(
        REQUESTS,
        "HTTP requests answered, by route pattern, method and status"
    );
    describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "Time from a request's arrival to its answer, by route pattern"
    );
    describe_counter!(
        AUTH_FAILURES,
        "Requests refused because their credential was missing or not valid, by error code"
    );
    describe_counter!(LOGINS, "Login attempts, by outcome");
    describe_counter!(
        THROTTLED,
        "Requests refused by a limit: login throttling, hourly request and generation limits"
    );
    describe_gauge!(
        SESSIONS,
        "Sessions that are neither revoked nor past their end"
    );
    describe_gauge!(KEYS, "API keys that are neither revoked nor expired");
    describe_gauge!(
        EXPIRING,
        "Active API keys expiring within 1, 7 or 30 days (label within)"
    );
    describe_counter!(
        LOG_LINES_DROPPED,
        "Log lines dropped because standard error could not keep up"
    );
    describe_gauge!(CONNECTIONS, "Client connections open on the API's address");
    describe_gauge!(
        AUDIT_STREAM_LAG,
        "Audit entries not yet accepted by the SIEM's syslog receiver (audit.syslog_url), as last read"
    );
    describe_counter!(
        DATABASE_UNAVAILABLE,
        "Database operations refused by trouble outside the process (locked, read-only, disk full, I/O error, no connection), by kind"
    );
}

/// One answered request.
pub fn request(route: &'static str, method: &Method, status: u16, elapsed: Duration) {
    if HANDLE.get().is_none() {
        return;
    }
    let method = method_label(method);
    counter!(REQUESTS, "route" => route, "method" => method, "status" => status_label(status))
        .increment(1);
    histogram!(DURATION, "route" => route).record(elapsed.as_secs_f64());
}

/// A credential refused: `reason` is the error code of the answer.
pub fn auth_failure(reason: &'static str) {
    counter!(AUTH_FAILURES, "reason" => reason).increment(1);
}

/// A login's outcome: `success`, or the code it was refused with.
pub fn login(outcome: &'static str) {
    counter!(LOGINS, "outcome" => outcome).increment(1);
}

/// What refused a request: `login` (the login throttle), `rate_limit`, `generation`.
pub fn throttled(kind: &'static str) {
    counter!(THROTTLED, "kind" => kind).increment(1);
}

/// A database operation that met trouble outside the process: `kind` is `Trouble::as_str`.
pub fn database_unavailable(kind: &'static str) {
    counter!(DATABASE_UNAVAILABLE, "kind" => kind).increment(1);
}

/// The gauges, as the caller read them now.
pub struct Gauges {
    /// Sessions and keys active in the live state.
    pub sessions: usize,
    pub keys: usize,
    /// Active keys expiring within 1, 7 and 30 days.
    pub expiring: [usize; 3],
    /// The API's open connections.
    pub open_connections: u64,
    /// The audit stream's lag; `None` when it is off.
    pub audit_stream_lag: Option<i64>,
}

/// The exposition text, with `gauges`.
pub fn render(gauges: Gauges) -> String {
    let Some(handle) = HANDLE.get() else {
        return String::new();
    };
    gauge!(SESSIONS).set(gauges.sessions as f64);
    gauge!(KEYS).set(gauges.keys as f64);
    for (count, within) in gauges.expiring.iter().zip(["1d", "7d", "30d"]) {
        gauge!(EXPIRING, "within" => within).set(*count as f64);
    }
    gauge!(CONNECTIONS).set(gauges.open_connections as f64);
    if let Some(lag) = gauges.audit_stream_lag {
        gauge!(AUDIT_STREAM_LAG).set(lag as f64);
    }
    if let Some(dropped) = DROPPED_LOG_LINES.get() {
        counter!(LOG_LINES_DROPPED).absolute(dropped.dropped_lines() as u64);
    }
    handle.run_upkeep();
    handle.render()
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The status as a label without formatting a string per request.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        204 => "204",
        302 => "302",
        303 => "303",
        304 => "304",
        400 => "400",
        401 => "401",
        402 => "402",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        413 => "413",
        415 => "415",
        429 => "429",
        431 => "431",
        500 => "500",
        503 => "503",
        _ => match status / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_labels_are_the_numbers() {
        for code in [200u16, 201, 204, 401, 404, 429, 503] {
            assert_eq!(status_label(code), code.to_string());
        }
        assert_eq!(status_label(418), "4xx");
        assert_eq!(status_label(502), "5xx");
    }
}

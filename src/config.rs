//! The typed configuration: embedded defaults (the shipped `claribi.toml`), then the config file,
//! then `CLARIBI_<SECTION>__<KEY>` variables. Loaded and validated once, then passed down.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Value};
use figment::Figment;
use serde::Deserialize;

/// The shipped `claribi.toml`, compiled in: it is both the documentation and the defaults.
pub const DEFAULTS: &str = include_str!("../claribi.toml");
const ENV_PREFIX: &str = "CLARIBI_";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub rate_limits: RateLimitConfig,
    pub credits: CreditsConfig,
    pub bootstrap: BootstrapConfig,
    pub cluster: ClusterConfig,
    pub metrics: MetricsConfig,
    pub backup: BackupConfig,
    pub audit: AuditConfig,
    pub sso: SsoConfig,
    pub notify: NotifyConfig,
}

/// Notices of keys about to expire (contract 10.4): by email through the site's SMTP relay,
/// and a signed webhook.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// `smtp://` or `smtps://`, with optional credentials; empty: no email.
    pub smtp_url: String,
    pub from: String,
    /// `http://` or `https://`; empty: no webhook.
    pub webhook_url: String,
    pub webhook_secret: String,
    pub key_expiry_days: Vec<u32>,
    pub interval: ConfigDuration,
}

impl NotifyConfig {
    /// Whether any notice goes anywhere.
    pub fn enabled(&self) -> bool {
        !self.smtp_url.is_empty() || !self.webhook_url.is_empty()
    }
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("smtp_url", &redact_url_password(&self.smtp_url))
            .field("from", &self.from)
            .field("webhook_url", &redact_url_query(&self.webhook_url))
            .field("webhook_secret", &"[redacted]")
            .field("key_expiry_days", &self.key_expiry_days)
            .field("interval", &self.interval)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoConfig {
    /// CA certificates (PEM) for directories and identity providers, besides the system's.
    pub ca_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Where audit entries are streamed as syslog; `None` (empty): nowhere.
    #[serde(deserialize_with = "optional_syslog_url")]
    pub syslog_url: Option<SyslogUrl>,
    /// CA certificates (PEM) for a `tls://` receiver, besides the system's; empty: none.
    pub syslog_ca_file: PathBuf,
}

/// How syslog messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogTransport {
    Tcp,
    Tls,
    Udp,
}

/// `audit.syslog_url`: `tcp://`, `tls://` or `udp://`, a host name or address, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogUrl {
    pub transport: SyslogTransport,
    /// A name or an address (IPv6 without its brackets).
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for SyslogUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.transport {
            SyslogTransport::Tcp => "tcp",
            SyslogTransport::Tls => "tls",
            SyslogTransport::Udp => "udp",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl std::str::FromStr for SyslogUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let wrong = || {
            format!(
                "`{text}` is not a syslog address like \"tls://siem.example.com:6514\", \
                 \"tcp://host:514\" or \"udp://host:514\""
            )
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(wrong)?;
        let transport = match scheme {
            "tcp" => SyslogTransport::Tcp,
            "tls" => SyslogTransport::Tls,
            "udp" => SyslogTransport::Udp,
            _ => return Err(wrong()),
        };
        let (host, port) = rest.rsplit_once(':').ok_or_else(wrong)?;
        let host = match host.strip_prefix('[') {
            Some(v6) => v6
                .strip_suffix(']')
                .filter(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
                .ok_or_else(wrong)?,
            // An IPv6 address goes in brackets: its colons would be read as the port's.
            None if host.contains(':') => return Err(wrong()),
            None => host,
        };
        let name_like = |h: &str| {
            !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':')
        };
        if !name_like(host) || (host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err()) {
            return Err(wrong());
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(wrong)?;
        Ok(SyslogUrl {
            transport,
            host: host.to_string(),
            port,
        })
    }
}

fn optional_syslog_url<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SyslogUrl>, D::Error> {
    let text = String::deserialize(deserializer)?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served, apart from the API; `None` (empty): off.
    #[serde(deserialize_with = "optional_address")]
    pub bind: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// How often a scheduled backup is written; `None` (empty): never.
    #[serde(deserialize_with = "optional_duration")]
    pub interval: Option<ConfigDuration>,
    dir: PathBuf,
    pub keep: u32,
}

impl BackupConfig {
    /// `backup.dir`, or `backups` in the data directory.
    pub fn dir(&self, server: &ServerConfig) -> PathBuf {
        if self.dir.as_os_str().is_empty() {
            server.data_dir.join("backups")
        } else {
            self.dir.clone()
        }
    }
}

fn optional_address<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not an address and port like \"127.0.0.1:9090\""
        ))
    })
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ConfigDuration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    ConfigDuration::deserialize(serde::de::value::StringDeserializer::<D::Error>::new(text))
        .map(Some)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub lease: ConfigDuration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub max_body_bytes: u64,
    #[serde(deserialize_with = "ip_nets")]
    pub trusted_proxies: Vec<IpNet>,
    pub cors_origins: Vec<String>,
    pub public_url: String,
    pub shutdown_grace: ConfigDuration,
    pub scheduling: Scheduling,
    pub apply_timeout: ConfigDuration,
    pub header_read_timeout: ConfigDuration,
    pub body_read_timeout: ConfigDuration,
    pub idle_timeout: ConfigDuration,
    pub max_connections: u32,
}

/// An address (`10.0.0.1`, `::1`) or a CIDR range (`10.0.0.0/8`, `fd00::/8`).
pub fn parse_ip_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("`{text}` is neither an IP address nor a CIDR range"))
}

fn ip_nets<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|t| parse_ip_net(t).map_err(serde::de::Error::custom))
        .collect()
}

/// `server.scheduling`: the Linux scheduling policy of the server's threads (see `sched`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Scheduling {
    Batch,
    Normal,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    path: PathBuf,
    /// A PostgreSQL database (`postgres://...`); empty: SQLite at `path`.
    pub url: String,
    pub pool_size: u32,
    pub busy_timeout: ConfigDuration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: LogLevel,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub issuer: String,
    pub access_ttl: ConfigDuration,
    pub refresh_ttl: ConfigDuration,
    pub rotate_refresh_tokens: bool,
    pub max_failed_logins: u32,
    pub max_failed_logins_per_address: u32,
    pub failure_window: ConfigDuration,
    pub lockout: ConfigDuration,
    pub min_password_length: usize,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub max_pending_password_checks: usize,
    /// What `rotate` accepts as `overlap`, as written (`"0s"`, `"1h"`, ...).
    pub rotation_overlaps: Vec<String>,
    /// Live sessions a user may hold; a login past it ends the oldest.
    pub max_sessions_per_user: u32,
    /// Accounts and addresses the login throttle holds in memory at most.
    pub throttle_max_entries: u32,
}

impl AuthConfig {
    /// The overlap `requested` names, if the configuration offers it.
    pub fn rotation_overlap(&self, requested: &str) -> Option<Duration> {
        self.rotation_overlaps
            .iter()
            .find(|offered| offered.trim() == requested)
            .and_then(|offered| humantime::parse_duration(offered.trim()).ok())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub general_per_hour: u32,
    pub generation_per_hour: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditsConfig {
    pub monthly_allowance: i64,
    pub report_generation: i64,
    pub dashboard_refresh: i64,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapConfig {
    pub admin_email: String,
    pub admin_password: String,
    pub organization: String,
}

impl std::fmt::Debug for BootstrapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapConfig")
            .field("admin_email", &self.admin_email)
            .field("admin_password", &"[redacted]")
            .field("organization", &self.organization)
            .finish()
    }
}

/// A duration written as `"90s"`, `"15m"`, `"1h"` or `"7d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(text.trim())
            .map(ConfigDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a duration ({e}); write it like \"90s\", \"15m\", \"1h\" or \"7d\""
                ))
            })
    }
}

impl ConfigDuration {
    pub fn as_secs(self) -> i64 {
        i64::try_from(self.0.as_secs()).unwrap_or(i64::MAX)
    }
}

/// Why the configuration could not be loaded; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("configuration: {0}")]
    Invalid(String),
}

/// The configuration together with what loading it noticed but did not refuse.
pub struct Loaded {
    pub config: Config,
    /// Effective values, for `check-config` (secrets redacted).
    pub effective: Dict,
    /// `CLARIBI_*` variables that name no key: reported as warnings once logging is up.
    pub unknown_env: Vec<String>,
}

/// Which file to read: an explicit `--config PATH` must exist; the default `./claribi.toml`
/// is optional.
pub enum Source<'a> {
    Explicit(&'a Path),
    Default,
}

impl Config {
    /// Loads defaults, file and environment from the process environment.
    pub fn load(source: Source<'_>) -> Result<Loaded, ConfigError> {
        Self::load_with_env(source, std::env::vars())
    }

    /// `load` with exactly these variables and the default file source (tests).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn load_from_env_for_test(vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        Self::load_with_env(
            Source::Default,
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    fn load_with_env(
        source: Source<'_>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let defaults = Figment::from(Toml::string(DEFAULTS));
        let mut figment = defaults.clone();
        let file = match source {
            Source::Explicit(path) => {
                if !path.is_file() {
                    return Err(ConfigError::File {
                        path: path.to_owned(),
                        message: "no such file".into(),
                    });
                }
                Some(path.to_owned())
            }
            Source::Default => Some(PathBuf::from("claribi.toml")).filter(|p| p.is_file()),
        };
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.clone(),
                message: e.to_string(),
            })?;
            // Checked against the defaults so that a typo is an error naming the key, not a
            // silently ignored line.
            let file_figment = Figment::from(Toml::string(&text));
            let file_values: Dict = file_figment.extract().map_err(|e| ConfigError::File {
                path: path.clone(),
                message: e.to_string(),
            })?;
            if let Some(key) = unknown_key(&defaults, &file_values, "") {
                return Err(ConfigError::File {
                    path: path.clone(),
                    message: format!("unknown key `{key}`"),
                });
            }
            figment = figment.merge(Toml::string(&text));
        }

        let mut unknown_env = Vec::new();
        let mut known = Vec::new();
        // figment's own Env provider would turn an unknown variable into an error; the contract
        // wants a warning, so the known keys are picked here.
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            if defaults.contains(&key) {
                known.push((key, value));
            } else {
                unknown_env.push(name);
            }
        }
        for (key, value) in known {
            let parsed: Value = value.parse().unwrap_or_else(|_| Value::from(value.clone()));
            figment = figment.merge((key.as_str(), parsed));
        }

        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(describe(&e)))?;
        config.validate()?;
        let mut effective: Dict = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(describe(&e)))?;
        redact(&mut effective);
        Ok(Loaded {
            config,
            effective,
            unknown_env,
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, what: &str| Err(ConfigError::Invalid(format!("`{key}` {what}")));
        if self.server.max_body_bytes < 1024 {
            return fail("server.max_body_bytes", "must be at least 1024");
        }
        if !self.database.url.is_empty() {
            let url = &self.database.url;
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return fail(
                    "database.url",
                    "must be empty (SQLite) or a PostgreSQL URL, postgres://user:password@host:port/dbname",
                );
            }
            if let Err(e) = url.parse::<postgres::Config>() {
                return Err(ConfigError::Invalid(format!(
                    "`database.url` is not valid: {e}"
                )));
            }
        }
        if self.database.pool_size == 0 || self.database.pool_size > 64 {
            return fail("database.pool_size", "must be between 1 and 64");
        }
        if self.auth.access_ttl.0 < Duration::from_secs(1) {
            return fail("auth.access_ttl", "must be at least 1s");
        }
        if self.auth.refresh_ttl.0 < self.auth.access_ttl.0 {
            return fail(
                "auth.refresh_ttl",
                "must not be shorter than auth.access_ttl",
            );
        }
        if self.auth.issuer.trim().is_empty() {
            return fail("auth.issuer", "must not be empty");
        }
        if self.auth.max_failed_logins == 0 || self.auth.max_failed_logins_per_address == 0 {
            return fail(
                "auth.max_failed_logins",
                "and its per-address twin must be at least 1",
            );
        }
        if self.auth.min_password_length < 8 {
            return fail("auth.min_password_length", "must be at least 8");
        }
        if self.auth.max_sessions_per_user == 0 {
            return fail("auth.max_sessions_per_user", "must be at least 1");
        }
        if !(16..=10_000_000).contains(&self.auth.throttle_max_entries) {
            return fail(
                "auth.throttle_max_entries",
                "must be between 16 and 10000000",
            );
        }
        if argon2::Params::new(
            self.auth.argon2_memory_kib,
            self.auth.argon2_iterations,
            self.auth.argon2_parallelism,
            None,
        )
        .is_err()
        {
            return fail(
                "auth.argon2_memory_kib",
                "and argon2_iterations/argon2_parallelism are not valid argon2 parameters",
            );
        }
        for overlap in &self.auth.rotation_overlaps {
            match humantime::parse_duration(overlap.trim()) {
                Ok(d) if d <= Duration::from_secs(365 * 86_400) => {}
                _ => {
                    return fail(
                        "auth.rotation_overlaps",
                        "must list durations of at most a year, like \"0s\", \"1h\" or \"7d\"",
                    )
                }
            }
        }
        if self.server.max_connections == 0 {
            return fail("server.max_connections", "must be at least 1");
        }
        for (key, value) in [
            (
                "server.header_read_timeout",
                self.server.header_read_timeout.0,
            ),
            ("server.body_read_timeout", self.server.body_read_timeout.0),
            ("server.idle_timeout", self.server.idle_timeout.0),
        ] {
            if value < Duration::from_millis(100) {
                return fail(key, "must be at least 100ms");
            }
        }
        if self.cluster.lease.0 < Duration::from_secs(1) {
            return fail("cluster.lease", "must be at least 1s");
        }
        if self.server.apply_timeout.0 < Duration::from_millis(100) {
            return fail("server.apply_timeout", "must be at least 100ms");
        }
        if self.rate_limits.general_per_hour == 0 || self.rate_limits.generation_per_hour == 0 {
            return fail("rate_limits", "limits must be at least 1");
        }
        if self.credits.monthly_allowance < 0
            || self.credits.report_generation < 0
            || self.credits.dashboard_refresh < 0
        {
            return fail("credits", "values must not be negative");
        }
        for origin in &self.server.cors_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return fail(
                    "server.cors_origins",
                    "entries must start with http:// or https://",
                );
            }
        }
        let bootstrap = &self.bootstrap;
        if bootstrap.admin_email.is_empty() != bootstrap.admin_password.is_empty() {
            return fail(
                "bootstrap.admin_password",
                "and bootstrap.admin_email must be set together",
            );
        }
        if bootstrap.organization.trim().is_empty() {
            return fail("bootstrap.organization", "must not be empty");
        }
        if let Some(interval) = self.backup.interval {
            if interval.0 < Duration::from_secs(1) {
                return fail("backup.interval", "must be at least 1s (or empty: off)");
            }
        }
        if self.backup.keep == 0 {
            return fail("backup.keep", "must be at least 1");
        }
        if self
            .metrics
            .bind
            .is_some_and(|m| m == self.server.bind && m.port() != 0)
        {
            return fail("metrics.bind", "must differ from server.bind");
        }
        if !self.sso.ca_file.as_os_str().is_empty() && !self.sso.ca_file.is_file() {
            return Err(ConfigError::Invalid(format!(
                "`sso.ca_file`: no such file {}",
                self.sso.ca_file.display()
            )));
        }
        let ca_file = &self.audit.syslog_ca_file;
        if !ca_file.as_os_str().is_empty() {
            if self.audit.syslog_url.as_ref().map(|u| u.transport) != Some(SyslogTransport::Tls) {
                return fail(
                    "audit.syslog_ca_file",
                    "is set but audit.syslog_url is not a tls:// address",
                );
            }
            if !ca_file.is_file() {
                return Err(ConfigError::Invalid(format!(
                    "`audit.syslog_ca_file`: no such file {}",
                    ca_file.display()
                )));
            }
        }
        self.notify.validate()
    }
}

impl NotifyConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let fail =
            |key: &str, what: &str| Err(ConfigError::Invalid(format!("`notify.{key}` {what}")));
        if !self.smtp_url.is_empty() {
            let parsed = url::Url::parse(&self.smtp_url).ok();
            let shaped = parsed.as_ref().is_some_and(|u| {
                matches!(u.scheme(), "smtp" | "smtps")
                    && u.host_str().is_some_and(|h| !h.is_empty())
            });
            if !shaped {
                return fail(
                    "smtp_url",
                    "must be smtp://host[:port] or smtps://host[:port], with optional user:password@",
                );
            }
            if self
                .from
                .trim()
                .parse::<lettre::message::Mailbox>()
                .is_err()
            {
                return fail(
                    "from",
                    "must be the sender's address, like \"claribi <claribi@example.com>\", when smtp_url is set",
                );
            }
        }
        if !self.webhook_url.is_empty() {
            let shaped = url::Url::parse(&self.webhook_url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
            if !shaped {
                return fail("webhook_url", "must be an http:// or https:// address");
            }
            if self.webhook_secret.chars().count() < 16 {
                return fail(
                    "webhook_secret",
                    "must be at least 16 characters when webhook_url is set",
                );
            }
        }
        if self.key_expiry_days.is_empty()
            || self.key_expiry_days.len() > 10
            || self.key_expiry_days.iter().any(|d| !(1..=365).contains(d))
        {
            return fail(
                "key_expiry_days",
                "must list 1 to 10 numbers of days from 1 to 365, like [30, 7, 1]",
            );
        }
        let interval = self.interval.0;
        if interval < Duration::from_secs(1) || interval > Duration::from_secs(3_600) {
            return fail("interval", "must be from 1s to 1h");
        }
        Ok(())
    }
}

impl DatabaseConfig {
    /// The same settings on another database file (`restore` builds the new database beside
    /// the one it replaces).
    pub fn at(&self, path: PathBuf) -> DatabaseConfig {
        DatabaseConfig {
            path,
            ..self.clone()
        }
    }

    /// The database file: `database.path`, or `claribi.db` in the data directory.
    pub fn path(&self, server: &ServerConfig) -> PathBuf {
        if self.path.as_os_str().is_empty() {
            server.data_dir.join("claribi.db")
        } else {
            self.path.clone()
        }
    }
}

/// figment's message, with the key it concerns.
fn describe(error: &figment::Error) -> String {
    error
        .clone()
        .into_iter()
        .map(|e| match e.path.join(".") {
            key if key.is_empty() => e.kind.to_string(),
            key => format!("`{key}`: {}", e.kind),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn unknown_key(defaults: &Figment, values: &Dict, prefix: &str) -> Option<String> {
    for (name, value) in values {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        if !defaults.contains(&key) {
            return Some(key);
        }
        if let Value::Dict(_, inner) = value {
            if let Some(found) = unknown_key(defaults, inner, &key) {
                return Some(found);
            }
        }
    }
    None
}

fn redact(values: &mut Dict) {
    if let Some(Value::Dict(_, database)) = values.get_mut("database") {
        if let Some(Value::String(_, url)) = database.get_mut("url") {
            *url = redact_url_password(url);
        }
    }
    if let Some(Value::Dict(_, notify)) = values.get_mut("notify") {
        if let Some(Value::String(_, url)) = notify.get_mut("smtp_url") {
            *url = redact_url_password(url);
        }
        if let Some(Value::String(_, url)) = notify.get_mut("webhook_url") {
            *url = redact_url_query(url);
        }
        if let Some(Value::String(_, secret)) = notify.get_mut("webhook_secret") {
            if !secret.is_empty() {
                *secret = "[redacted]".into();
            }
        }
    }
    if let Some(Value::Dict(_, bootstrap)) = values.get_mut("bootstrap") {
        if let Some(Value::String(_, password)) = bootstrap.get_mut("admin_password") {
            if !password.is_empty() {
                *password = "[redacted]".into();
            }
        }
    }
}

/// An address with its credentials and its query hidden (a webhook's may carry a token in
/// either): `https://[redacted]@host/path?[redacted]`.
pub fn redact_url_query(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) => {
            let had_credentials = !url.username().is_empty() || url.password().is_some();
            let _ = url.set_username("");
            let _ = url.set_password(None);
            let query = url.query().is_some();
            url.set_query(None);
            let mut shown = url.to_string();
            if had_credentials {
                shown = shown.replacen("://", "://[redacted]@", 1);
            }
            if query {
                shown.push_str("?[redacted]");
            }
            shown
        }
        Err(_) => text.to_string(),
    }
}

/// `postgres://user:secret@host/db` as `postgres://user:[redacted]@host/db`, and a
/// `password=` parameter's value likewise. The credentials end at the last `@` before the
/// query (a password may hold a raw `/`), as the client reads them.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (rest, None),
    };
    let location = match location.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{user}:[redacted]@{host}"),
            None => location.to_string(),
        },
        None => location.to_string(),
    };
    let query = query.map(|q| {
        q.split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                    format!("{key}=[redacted]")
                }
                _ => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&")
    });
    match query {
        Some(q) => format!("{scheme}://{location}?{q}"),
        None => format!("{scheme}://{location}"),
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("path", &self.path)
            .field("url", &redact_url_password(&self.url))
            .field("pool_size", &self.pool_size)
            .field("busy_timeout", &self.busy_timeout)
            .finish()
    }
}

impl DatabaseConfig {
    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        !self.url.is_empty()
    }
}

#[cfg(test)]
// figment::Jail's closures return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn syslog_addresses_name_a_transport_a_host_and_a_port() {
        let url = |text: &str| text.parse::<SyslogUrl>();
        assert_eq!(
            url("tls://siem.example.com:6514"),
            Ok(SyslogUrl {
                transport: SyslogTransport::Tls,
                host: "siem.example.com".into(),
                port: 6514
            })
        );
        let v6 = url("udp://[::1]:514").unwrap();
        assert_eq!(
            (v6.transport, v6.host.as_str()),
            (SyslogTransport::Udp, "::1")
        );
        assert_eq!(v6.to_string(), "udp://[::1]:514");
        assert_eq!(
            url("tcp://10.0.0.5:514").unwrap().to_string(),
            "tcp://10.0.0.5:514"
        );
        for wrong in [
            "siem:514",
            "http://siem:514",
            "tcp://siem",
            "tcp://siem:0",
            "tcp://siem:65536",
            "tcp://:514",
            "tcp://si em:514",
            "tcp://::1:514",
            "tcp://[siem]:514",
            "tls://user@siem:6514",
        ] {
            assert!(url(wrong).is_err(), "{wrong} was accepted");
        }
    }

    fn env(vars: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn load(vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        Config::load_with_env(Source::Default, env(vars))
    }

    #[test]
    fn embedded_defaults_match_the_contract() {
        figment::Jail::expect_with(|_| {
            let cfg = load(&[]).map_err(|e| e.to_string())?.config;
            assert_eq!(cfg.server.bind.to_string(), "127.0.0.1:8080");
            assert_eq!(cfg.auth.access_ttl.0, Duration::from_secs(3600));
            assert_eq!(cfg.auth.refresh_ttl.0, Duration::from_secs(7 * 86400));
            assert_eq!(cfg.auth.max_failed_logins, 5);
            assert_eq!(cfg.server.max_body_bytes, 65536);
            assert_eq!(cfg.log.format, LogFormat::Pretty);
            assert_eq!(cfg.server.scheduling, Scheduling::Batch);
            assert_eq!(
                cfg.database.path(&cfg.server),
                PathBuf::from("./data/claribi.db")
            );
            Ok(())
        });
    }

    #[test]
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "claribi.toml",
                "[server]\nbind = \"127.0.0.1:9000\"\n[auth]\naccess_ttl = \"15m\"\n",
            )?;
            let cfg = load(&[("CLARIBI_AUTH__ACCESS_TTL", "90s")])
                .map_err(|e| e.to_string())?
                .config;
            assert_eq!(cfg.server.bind.port(), 9000);
            assert_eq!(cfg.auth.access_ttl.0, Duration::from_secs(90));
            Ok(())
        });
    }

    #[test]
    fn a_bad_duration_names_the_key() {
        figment::Jail::expect_with(|_| {
            let err = load(&[("CLARIBI_AUTH__ACCESS_TTL", "soon")])
                .err()
                .ok_or("accepted")?;
            let text = err.to_string();
            assert!(text.contains("auth.access_ttl"), "{text}");
            assert!(text.contains("soon"), "{text}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_in_the_file_is_an_error() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("claribi.toml", "[auth]\naccess_tll = \"1h\"\n")?;
            let err = load(&[]).err().ok_or("accepted")?;
            assert!(err.to_string().contains("auth.access_tll"), "{err}");
            jail.create_file("claribi.toml", "[nonsense]\nx = 1\n")?;
            let err = load(&[]).err().ok_or("accepted")?;
            assert!(err.to_string().contains("nonsense"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_variable_is_only_a_warning() {
        figment::Jail::expect_with(|_| {
            let loaded = load(&[("CLARIBI_AUTH__ACESS_TTL", "1h"), ("PATH", "/bin")])
                .map_err(|e| e.to_string())?;
            assert_eq!(
                loaded.unknown_env,
                vec!["CLARIBI_AUTH__ACESS_TTL".to_string()]
            );
            Ok(())
        });
    }

    #[test]
    fn lists_and_numbers_come_from_the_environment() {
        figment::Jail::expect_with(|_| {
            let cfg = load(&[
                (
                    "CLARIBI_SERVER__TRUSTED_PROXIES",
                    "[\"127.0.0.1\", \"10.0.0.0/8\"]",
                ),
                ("CLARIBI_DATABASE__POOL_SIZE", "8"),
                ("CLARIBI_AUTH__ROTATE_REFRESH_TOKENS", "true"),
            ])
            .map_err(|e| e.to_string())?
            .config;
            assert_eq!(cfg.server.trusted_proxies.len(), 2);
            assert!(
                cfg.server.trusted_proxies[1].contains(&"10.200.0.1".parse::<IpAddr>().unwrap())
            );
            assert_eq!(cfg.database.pool_size, 8);
            assert!(cfg.auth.rotate_refresh_tokens);
            Ok(())
        });
    }

    #[test]
    fn notify_secrets_are_redacted_and_its_settings_checked() {
        figment::Jail::expect_with(|_| {
            let loaded = load(&[
                (
                    "CLARIBI_NOTIFY__SMTP_URL",
                    "smtp://mailer:smtp-pass-77@relay.example.com:587",
                ),
                ("CLARIBI_NOTIFY__FROM", "claribi <claribi@example.com>"),
                (
                    "CLARIBI_NOTIFY__WEBHOOK_URL",
                    "https://chat.example.com/hook?token=hook-token-99",
                ),
                (
                    "CLARIBI_NOTIFY__WEBHOOK_SECRET",
                    "webhook-secret-of-this-test",
                ),
            ])
            .map_err(|e| e.to_string())?;
            let shown = format!("{:?} {:?}", loaded.effective, loaded.config);
            for secret in [
                "smtp-pass-77",
                "hook-token-99",
                "webhook-secret-of-this-test",
            ] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert!(shown.contains("relay.example.com"), "{shown}");
            for (key, value) in [
                ("CLARIBI_NOTIFY__FROM", "not an address"),
                ("CLARIBI_NOTIFY__WEBHOOK_SECRET", "short"),
                ("CLARIBI_NOTIFY__KEY_EXPIRY_DAYS", "[0, 7]"),
                ("CLARIBI_NOTIFY__SMTP_URL", "http://relay.example.com"),
            ] {
                let mut vars = vec![
                    ("CLARIBI_NOTIFY__SMTP_URL", "smtp://relay.example.com"),
                    ("CLARIBI_NOTIFY__FROM", "claribi@example.com"),
                    (
                        "CLARIBI_NOTIFY__WEBHOOK_URL",
                        "https://chat.example.com/hook",
                    ),
                    (
                        "CLARIBI_NOTIFY__WEBHOOK_SECRET",
                        "webhook-secret-of-this-test",
                    ),
                ];
                vars.retain(|(k, _)| *k != key);
                vars.push((key, value));
                let refused = load(&vars).err().map(|e| e.to_string()).unwrap_or_default();
                let name = key.trim_start_matches("CLARIBI_NOTIFY__").to_lowercase();
                assert!(
                    refused.contains(&format!("notify.{name}")),
                    "{key}={value}: {refused:?}"
                );
            }
            Ok(())
        });
    }

    #[test]
    fn the_bootstrap_password_is_redacted() {
        figment::Jail::expect_with(|_| {
            let loaded = load(&[
                ("CLARIBI_BOOTSTRAP__ADMIN_EMAIL", "a@example.com"),
                ("CLARIBI_BOOTSTRAP__ADMIN_PASSWORD", "hunter2hunter2"),
            ])
            .map_err(|e| e.to_string())?;
            let shown = format!("{:?} {:?}", loaded.effective, loaded.config);
            assert!(!shown.contains("hunter2"), "{shown}");
            Ok(())
        });
    }

    #[test]
    fn the_database_password_is_redacted_and_a_wrong_url_named() {
        figment::Jail::expect_with(|_| {
            let loaded = load(&[(
                "CLARIBI_DATABASE__URL",
                "postgres://claribi:s3cret-pw@db.internal:5432/claribi",
            )])
            .map_err(|e| e.to_string())?;
            assert!(loaded.config.database.is_postgres());
            let shown = format!("{:?} {:?}", loaded.effective, loaded.config);
            assert!(!shown.contains("s3cret-pw"), "{shown}");
            assert!(
                shown.contains("postgres://claribi:[redacted]@db.internal:5432/claribi"),
                "{shown}"
            );
            let err = load(&[("CLARIBI_DATABASE__URL", "mysql://x@y/z")])
                .err()
                .ok_or("accepted")?;
            assert!(err.to_string().contains("database.url"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_explicit_file_is_an_error() {
        let err = Config::load_with_env(Source::Explicit(Path::new("/nonexistent.toml")), env(&[]));
        assert!(matches!(err, Err(ConfigError::File { .. })));
    }

    #[test]
    fn validation_names_the_key() {
        figment::Jail::expect_with(|_| {
            let err = load(&[("CLARIBI_DATABASE__POOL_SIZE", "0")])
                .err()
                .ok_or("accepted")?;
            assert!(err.to_string().contains("database.pool_size"), "{err}");
            Ok(())
        });
    }
}

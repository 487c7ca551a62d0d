//! The command line: `serve` and the administration commands. Each command group has its own
//! file; this one parses, loads the configuration, sets up logging and maps errors to exit codes.

mod admin;
mod demo;
mod service_accounts;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, LogFormat, LogLevel, Scheduling, Source};
use crate::domain::Secret;

/// `claribi --version`: the release and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BUILT_FROM_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "claribi",
    version = VERSION,
    about = "clariBI on-prem authentication and API server"
)]
pub struct Cli {
    /// Configuration file (default: ./claribi.toml when it exists).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server until SIGTERM or SIGINT.
    Serve,
    /// Validate the configuration and print the effective values (secrets redacted).
    CheckConfig,
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Manage service accounts: identities of an organization for machines, whose keys
    /// outlive the people who made them.
    #[command(subcommand, name = "service-account")]
    ServiceAccount(ServiceAccountCommand),
    /// An organization's security policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Demo content for trying a new installation.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The site's directory (LDAP / Active Directory sign-in providers).
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Write a consistent copy of the database, also while the server runs.
    Backup {
        /// The file to create; an existing file is not overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Put a backup in place of the database (server stopped). The database it replaces is
    /// kept beside it, and every revocation made after the backup is made again.
    Restore {
        /// A file written by `claribi backup` or a scheduled backup.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
    /// Copy this installation's SQLite database (server stopped) into an empty PostgreSQL
    /// database, checking every table's row count; then set `database.url` to run on it.
    Migrate {
        /// The PostgreSQL database: postgres://user:password@host:port/dbname, or `-` to read
        /// it from standard input (the password then stays out of the process list)
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization and its owner; the owner's password is read from standard input.
    Create {
        /// The organization's name.
        #[arg(long)]
        name: String,
        /// The owner's email address.
        #[arg(long, value_name = "EMAIL")]
        owner_email: String,
    },
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Fill an organization with data sources, reports, dashboards and a goal.
    Seed {
        /// The organization's name.
        #[arg(long, value_name = "NAME")]
        org: String,
        /// How many reports to create.
        #[arg(long, default_value_t = 20)]
        reports: u64,
    },
    /// Give an organization a long past, written as the server writes it (SQLite, server
    /// stopped):
    /// audit entries, API keys of its owner (the first ones revoked), reports and sessions. For trying
    /// how an installation that has lived for years holds up (benches/scale).
    History {
        /// The organization's name.
        #[arg(long, value_name = "NAME")]
        org: String,
        /// How many audit entries to write.
        #[arg(long, default_value_t = 0)]
        audit_entries: u64,
        /// How many API keys to create (their secrets are not kept).
        #[arg(long, default_value_t = 0)]
        keys: u64,
        /// How many of those keys to revoke.
        #[arg(long, default_value_t = 0)]
        revoked_keys: u64,
        /// How many completed reports to add.
        #[arg(long, default_value_t = 0)]
        reports: u64,
        /// How many signed-in sessions of the owner to open (their tokens are not kept).
        #[arg(long, default_value_t = 0)]
        sessions: u64,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Revoke the key with this prefix (claribi_key_ and 8 characters, as listed).
    Revoke {
        #[arg(long, value_name = "PREFIX")]
        prefix: String,
    },
    /// Find API keys in files (or standard input) and say whose they are; with --revoke,
    /// revoke the active ones. Exits 1 when an active key was found and left active.
    LeakCheck {
        /// Files to read (pasted text, logs); standard input without any.
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Revoke every active key found (audited as api_key.leaked).
        #[arg(long)]
        revoke: bool,
    },
}

#[derive(Subcommand)]
enum ServiceAccountCommand {
    /// Create a service account.
    Create {
        /// The organization's name.
        #[arg(long, value_name = "ORG")]
        org: String,
        /// Its name, unique in the organization.
        #[arg(long)]
        name: String,
        /// administrator, analyst, member or viewer.
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List an organization's service accounts with their usable keys.
    List {
        #[arg(long, value_name = "ORG")]
        org: String,
    },
    /// Deactivate a service account: every key of it is revoked at once.
    Deactivate {
        #[arg(long, value_name = "ORG")]
        org: String,
        #[arg(long)]
        name: String,
    },
    /// Activate a service account again (its revoked keys stay revoked).
    Activate {
        #[arg(long, value_name = "ORG")]
        org: String,
        #[arg(long)]
        name: String,
    },
    /// Delete a service account: its keys are revoked, it leaves every list.
    Delete {
        #[arg(long, value_name = "ORG")]
        org: String,
        #[arg(long)]
        name: String,
    },
    /// Create a key that acts as the service account; the key is printed this once.
    CreateKey {
        #[arg(long, value_name = "ORG")]
        org: String,
        /// The service account's name.
        #[arg(long)]
        name: String,
        /// The key's name.
        #[arg(long, value_name = "NAME")]
        key_name: String,
        /// A scope the key is limited to (repeat for more); none: the account's whole role.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// 30, 90 or 365; without it the key never expires (if the policy allows).
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<i64>,
        /// An address or CIDR range the key may be used from (repeat for more); none: any.
        #[arg(long = "allowed-ip", value_name = "NET")]
        allowed_ips: Vec<String>,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Print the organization's security policy and what breaks it today (exits 1 if
    /// anything does).
    Show {
        #[arg(long, value_name = "ORG")]
        org: String,
    },
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Sync every enabled LDAP provider of an organization now: deactivate the users the
    /// directory no longer has, disables or maps to no role, and apply role changes. Exits 1
    /// when a directory cannot be reached or would remove every user (nothing is changed).
    Sync {
        /// The organization: its name or its id.
        #[arg(long, value_name = "ORG")]
        org: String,
        /// Say what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain of every organization's audit log: exit 0 when it is intact, 1
    /// naming the first entry that is not.
    Verify,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input (one line).
    Create(UserCreate),
    /// Set a user's password from standard input (one line) and end all their sessions.
    SetPassword {
        #[arg(long, value_name = "EMAIL")]
        email: String,
    },
    /// Turn off a user's MFA: they log in with their password alone until they enrol again.
    ResetMfa {
        #[arg(long, value_name = "EMAIL")]
        email: String,
    },
    /// Deactivate a user: every session ends and every API key of theirs is revoked.
    Deactivate {
        #[arg(long, value_name = "EMAIL")]
        email: String,
    },
    /// Let a deactivated user log in again (their revoked keys stay revoked).
    Activate {
        #[arg(long, value_name = "EMAIL")]
        email: String,
    },
}

#[derive(Args)]
struct UserCreate {
    /// The organization's name.
    #[arg(long, value_name = "NAME")]
    org: String,
    #[arg(long, value_name = "EMAIL")]
    email: String,
    /// administrator, analyst, member or viewer (owners come with `org create`).
    #[arg(long)]
    role: String,
    /// The user's display name.
    #[arg(long, default_value = "")]
    name: String,
}

/// A command's failure: the message for standard error and the exit code.
pub struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 2,
        }
    }

    pub(crate) fn runtime(message: impl std::fmt::Display) -> Self {
        Failure {
            message: message.to_string(),
            code: 1,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("claribi: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let source = match &cli.config {
        Some(path) => Source::Explicit(path),
        None => Source::Default,
    };
    let loaded = Config::load(source).map_err(|e| Failure::usage(e.to_string()))?;
    // Before any other thread starts (the log's first): every thread the server starts
    // inherits the policy.
    let batch = matches!(cli.command, Command::Serve)
        && loaded.config.server.scheduling == Scheduling::Batch;
    let scheduled = batch.then(|| crate::sched::set_current_thread(crate::sched::Policy::Batch));
    let _log = init_logging(loaded.config.log.level, loaded.config.log.format);
    if let Some(Err(e)) = scheduled {
        tracing::warn!(error = %e, "server.scheduling = \"batch\" not applied");
    }
    for name in &loaded.unknown_env {
        tracing::warn!("ignoring environment variable {name}: it names no configuration key");
    }
    let config = loaded.config;
    match cli.command {
        Command::Serve => serve(config),
        Command::CheckConfig => {
            // What the configuration names and only a start would read: the syslog CA file.
            crate::ops::siem::Settings::from_config(&config, "").map_err(Failure::usage)?;
            let text = toml_text(&loaded.effective);
            print!("{text}");
            Ok(())
        }
        Command::Org(OrgCommand::Create { name, owner_email }) => {
            admin::create_org(config, &name, &owner_email, read_password()?)
        }
        Command::User(UserCommand::Create(args)) => admin::create_user(
            config,
            &args.org,
            &args.email,
            &args.role,
            &args.name,
            read_password()?,
        ),
        Command::User(UserCommand::SetPassword { email }) => {
            admin::set_password(config, &email, read_password()?)
        }
        Command::User(UserCommand::ResetMfa { email }) => admin::reset_mfa(config, &email),
        Command::User(UserCommand::Deactivate { email }) => {
            admin::set_active(config, &email, false)
        }
        Command::User(UserCommand::Activate { email }) => admin::set_active(config, &email, true),
        Command::ApiKey(ApiKeyCommand::Revoke { prefix }) => admin::revoke_key(config, &prefix),
        Command::ApiKey(ApiKeyCommand::LeakCheck { files, revoke }) => {
            admin::leak_check(config, &files, revoke)
        }
        Command::Audit(AuditCommand::Verify) => admin::verify_audit(config),
        Command::Directory(DirectoryCommand::Sync { org, dry_run }) => {
            admin::directory_sync(config, &org, dry_run)
        }
        Command::ServiceAccount(command) => service_account(config, command),
        Command::Policy(PolicyCommand::Show { org }) => service_accounts::show_policy(config, &org),
        Command::Demo(DemoCommand::Seed { org, reports }) => demo::seed(config, &org, reports),
        Command::Demo(DemoCommand::History {
            org,
            audit_entries,
            keys,
            revoked_keys,
            reports,
            sessions,
        }) => demo::history(
            config,
            &org,
            &demo::History {
                audit_entries,
                keys,
                revoked_keys,
                reports,
                sessions,
            },
        ),
        Command::Backup { out } => admin::backup(config, &out),
        Command::Restore { from } => admin::restore(config, &from),
        Command::Migrate { to } => admin::migrate(config, &to),
    }
}

fn service_account(config: Config, command: ServiceAccountCommand) -> Result<(), Failure> {
    use ServiceAccountCommand::*;
    match command {
        Create {
            org,
            name,
            role,
            description,
        } => service_accounts::create(config, &org, &name, &role, &description),
        List { org } => service_accounts::list(config, &org),
        Deactivate { org, name } => service_accounts::set_active(config, &org, &name, false),
        Activate { org, name } => service_accounts::set_active(config, &org, &name, true),
        Delete { org, name } => service_accounts::delete(config, &org, &name),
        CreateKey {
            org,
            name,
            key_name,
            scopes,
            expires_in_days,
            allowed_ips,
        } => service_accounts::create_key(
            config,
            &org,
            &name,
            service_accounts::KeyArgs {
                key_name,
                scopes,
                expires_in_days,
                allowed_ips,
            },
        ),
    }
}

fn serve(config: Config) -> Result<(), Failure> {
    // Blocking threads run SQL, one per pooled connection (argon2 has threads of its own);
    // more would only fight over the same connections.
    let blocking = config.database.pool_size as usize + 1;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking)
        .build()
        .map_err(Failure::runtime)?;
    runtime
        .block_on(crate::app::run(config))
        .map_err(Failure::runtime)
}

/// Log lines waiting for standard error at most; past them new lines are dropped and counted
/// (`claribi_log_lines_dropped_total`). About 30 MB of access lines at the worst.
const LOG_BUFFER: usize = 128_000;

/// The log goes to standard error from a thread of its own: a slow reader (a full pipe, a busy
/// journald) never stalls a request, which only hands its line over. The guard writes out what
/// is waiting when the process ends.
fn init_logging(level: LogLevel, format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::filter::LevelFilter;
    let level = match level {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_BUFFER)
        .thread_name("claribi-log")
        .finish(std::io::stderr());
    crate::telemetry::watch_dropped_log_lines(writer.error_counter());
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Pretty => builder.try_init(),
        // One object a line: timestamp, level, message and the event's fields at the top.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    if let Err(e) = result {
        eprintln!("claribi: logging is not available: {e}");
    }
    guard
}

/// Exactly one line from standard input, without its line ending; never from an argument, so
/// that it stays out of shell history and `ps`.
fn read_password() -> Result<Secret, Failure> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::runtime(format!("reading the password: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(Failure::usage(
            "no password on standard input (give it as one line)",
        ));
    }
    Ok(Secret::new(password))
}

fn toml_text(values: &figment::value::Dict) -> String {
    use figment::value::Value;
    let mut out = String::new();
    let mut sections: Vec<_> = values.iter().collect();
    sections.sort_by(|a, b| a.0.cmp(b.0));
    for (section, value) in sections {
        let Value::Dict(_, keys) = value else {
            continue;
        };
        out.push_str(&format!("[{section}]\n"));
        let mut keys: Vec<_> = keys.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        for (key, value) in keys {
            out.push_str(&format!("{key} = {}\n", render(value)));
        }
        out.push('\n');
    }
    out
}

/// A value as TOML. JSON's scalars and arrays are valid TOML; going through serde also renders
/// every number kind figment may hold (a value from the environment keeps the integer type it
/// was parsed as).
fn render(value: &figment::value::Value) -> String {
    use figment::value::Value;
    match value {
        Value::Empty(_, _) => "\"\"".into(),
        Value::Dict(_, _) => "{...}".into(),
        other => serde_json::to_string(other).unwrap_or_else(|_| "\"\"".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // figment's Jail wants its own (large) error type from the closure.
    #[allow(clippy::result_large_err)]
    #[test]
    fn check_config_prints_every_effective_value_as_toml_whatever_its_layer() {
        figment::Jail::expect_with(|_| {
            let loaded = Config::load_from_env_for_test(&[
                ("CLARIBI_AUTH__MAX_FAILED_LOGINS", "3"),
                ("CLARIBI_SERVER__TRUSTED_PROXIES", "[\"10.0.0.0/8\"]"),
                ("CLARIBI_AUTH__ROTATE_REFRESH_TOKENS", "true"),
            ])
            .map_err(|e| e.to_string())?;
            let text = toml_text(&loaded.effective);
            assert!(text.contains("max_failed_logins = 3\n"), "{text}");
            // What it prints loads back as the same configuration.
            use figment::providers::Format as _;
            let again: figment::value::Dict =
                figment::Figment::from(figment::providers::Toml::string(&text))
                    .extract()
                    .map_err(|e| format!("not TOML: {e}\n{text}"))?;
            let auth = again["auth"].as_dict().ok_or("no [auth]")?;
            assert_eq!(auth["max_failed_logins"].to_i128(), Some(3));
            assert_eq!(auth["rotate_refresh_tokens"].to_bool(), Some(true));
            let server = again["server"].as_dict().ok_or("no [server]")?;
            let proxies = server["trusted_proxies"].as_array().ok_or("no proxies")?;
            assert_eq!(proxies[0].as_str(), Some("10.0.0.0/8"));
            Ok(())
        });
    }
}

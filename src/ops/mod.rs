//! The operations layer: every change to organizations, users, sessions, MFA, keys and the
//! audited content, one function each, named in domain words. An operation owns its whole
//! change: one transaction that re-checks the caller's credential, writes, audits and appends
//! to the change feed; then this process's live state; then the confirmation of every other
//! server that follows the feed. Transports (`http/api`, `cli`)
//! parse, call and map; they never open a transaction or touch the live state themselves.

pub mod accounts;
pub mod backups;
pub mod content;
mod core;
pub mod feed;
pub mod journal;
pub mod keys;
pub mod mfa;
pub mod notices;
pub mod outbound;
pub mod passkeys;
pub mod policy;
pub mod rates;
pub mod restore;
pub mod service_accounts;
pub mod sessions;
pub mod siem;
pub mod sso;
pub mod throttle;
pub mod tls;
pub mod usage;
pub mod views;

pub use self::core::{App, AppState, StartError};
use crate::auth::live::Update;
use crate::auth::principal::{Authorized, Method, Principal};
use crate::domain::Id;
use crate::error::ApiError;
use crate::store::audit::{self, Entry, Outcome};
use crate::store::feed::Kind;
use crate::store::{credentials, Db};

/// Who makes a change.
#[derive(Debug, Clone)]
pub enum Actor {
    /// The server's own start (`bootstrap`), a background task (a directory sync) or an
    /// administrator at the shell (`cli`): no credential to re-check; every change waits for
    /// every running server to confirm it.
    System(&'static str),
    /// A request without credentials (a login, a refresh, a sign-in), from its client.
    Anonymous(Client),
    /// A request whose caller passed its route's guard.
    Caller(Box<Caller>),
}

/// Where a request came from, as the audit log records it.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
}

/// An authenticated caller that passed its route's guard, and where it called from. Built only
/// from an `Authorized`, which only `principal::authorize` builds: an operation that takes a
/// `Caller` cannot be reached without the check.
#[derive(Debug, Clone)]
pub struct Caller {
    auth: Authorized,
    client: Client,
}

impl Caller {
    pub fn new(auth: Authorized, client: Client) -> Caller {
        Caller { auth, client }
    }

    pub fn principal(&self) -> &Principal {
        self.auth.principal()
    }

    /// The caller's organization: every content query is scoped by it.
    pub fn organization_id(&self) -> Id {
        self.principal().organization_id
    }

    pub fn user_id(&self) -> Id {
        self.principal().user_id
    }

    /// May the caller change a resource created by `created_by`?
    pub fn may_change(&self, created_by: Option<Id>) -> bool {
        self.auth.may_change(created_by)
    }

    /// The caller as the maker of a change.
    pub fn actor(&self) -> Actor {
        Actor::Caller(Box::new(self.clone()))
    }
}

impl Actor {
    /// The client's address, for the login throttle.
    pub fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.client().and_then(|c| c.ip)
    }

    /// The request's client; `None` for the system.
    pub fn client(&self) -> Option<&Client> {
        match self {
            Actor::System(_) => None,
            Actor::Anonymous(client) => Some(client),
            Actor::Caller(caller) => Some(&caller.client),
        }
    }

    /// The authenticated caller; `None` for the system and for requests without credentials.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Actor::Caller(caller) => Some(caller.principal()),
            Actor::System(_) | Actor::Anonymous(_) => None,
        }
    }

    /// An audit entry with the actor's address, user agent and identity. Changes from the
    /// shell or the start say so in `details` (`{"via":"cli"}`) unless the caller sets others.
    pub fn entry(&self, action: &'static str, outcome: Outcome) -> Entry {
        let mut entry = Entry {
            action,
            outcome,
            ..Entry::default()
        };
        if let Actor::System(via) = self {
            entry.details = format!(r#"{{"via":"{via}"}}"#);
        }
        if let Some(client) = self.client() {
            entry.ip = client.ip.map(|ip| ip.to_string());
            entry.user_agent = client.user_agent.clone();
        }
        if let Some(p) = self.principal() {
            entry.organization_id = Some(p.organization_id);
            entry.user_id = Some(p.user_id);
            entry.api_key_prefix = p.key_prefix();
        }
        entry
    }
}

/// One change in progress, inside its transaction. Everything it touches gets a feed entry;
/// the operation returns once this server and every other server on the database has it.
pub struct Change<'t, 'c> {
    pub tx: &'t Db<'c>,
    actor: &'t Actor,
    touched: Vec<(Kind, Id)>,
    journaled: Vec<journal::Revocation>,
}

impl<'t, 'c> Change<'t, 'c> {
    pub fn actor(&self) -> &Actor {
        self.actor
    }

    /// Marks an object the live state mirrors as changed: it gets a feed entry, and its new
    /// state reaches this process's live state before the operation returns.
    pub fn touch(&mut self, kind: Kind, id: Id) {
        self.touched.push((kind, id));
    }

    pub fn touch_all(&mut self, kind: Kind, ids: &[Id]) {
        self.touched.extend(ids.iter().map(|id| (kind, *id)));
    }

    /// Journals what the change takes back beyond the revocations the journal finds in the
    /// touched objects' new states (a password, an MFA enrolment, a role, a public link), so
    /// that a restore of an older backup re-applies it.
    pub fn journal(&mut self, entry: journal::Revocation) {
        self.journaled.push(entry);
    }

    /// Journals the public links a change revoked.
    pub fn journal_links(&mut self, revoked: &[crate::store::public_links::Revoked]) {
        self.journaled.extend(
            revoked
                .iter()
                .map(|l| journal::Revocation::public_link(l.id, &l.token)),
        );
    }

    /// Records an audit entry in this transaction.
    pub fn record(&self, entry: &Entry) -> Result<Id, ApiError> {
        Ok(audit::record(self.tx, entry)?)
    }

    /// Records a successful `action` of the actor on a target.
    pub fn audit(
        &self,
        action: &'static str,
        target_type: &'static str,
        target_id: Id,
        details: Option<String>,
    ) -> Result<Id, ApiError> {
        let mut entry = self.actor.entry(action, Outcome::Success);
        entry.target_type = Some(target_type);
        entry.target_id = Some(target_id);
        if let Some(details) = details {
            entry.details = details;
        }
        self.record(&entry)
    }

    /// Like `audit`, for an entry that belongs to `organization_id` (shell changes have no
    /// organization of their own).
    pub fn audit_in(
        &self,
        organization_id: Id,
        action: &'static str,
        target_type: &'static str,
        target_id: Id,
        details: Option<String>,
    ) -> Result<Id, ApiError> {
        let mut entry = self.actor.entry(action, Outcome::Success);
        entry.organization_id = Some(organization_id);
        entry.target_type = Some(target_type);
        entry.target_id = Some(target_id);
        if let Some(details) = details {
            entry.details = details;
        }
        self.record(&entry)
    }
}

/// What a committed change left to do after the transaction: the states to apply here.
struct Committed<T> {
    value: T,
    seq: i64,
    updates: Vec<Update>,
    journaled: Vec<journal::Revocation>,
    journal_seq: i64,
}

/// Runs one change: re-checks the actor's credential, runs `f`, appends a feed entry for
/// every object it touched and reads their new states, all in one transaction; then applies
/// those states here and waits for the confirmations the change needs.
pub async fn change<T, F>(app: &AppState, actor: &Actor, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut Change<'_, '_>) -> Result<T, ApiError> + Send + 'static,
{
    let on_blocking = app.clone();
    let who = actor.clone();
    let committed = crate::store::blocking(move || {
        let app = on_blocking;
        let committed = app.store.write_blocking(|tx| -> Result<Committed<T>, ApiError> {
            recheck(tx, &who)?;
            let mut change = Change {
                tx,
                actor: &who,
                touched: Vec::new(),
                journaled: Vec::new(),
            };
            let value = f(&mut change)?;
            let journaled = change.journaled;
            let mut touched = change.touched;
            touched.sort_unstable();
            touched.dedup();
            let mut seq = 0;
            for &(kind, id) in &touched {
                seq = crate::store::feed::append(tx, kind, id)?;
            }
            // Journal entries are placed by feed position. A change that takes something back
            // without touching the live state (a public link) has no entry of its own: it is
            // journaled just after the head it committed on, which every backup that missed it
            // is at or before.
            let journal_seq = if seq == 0 && !journaled.is_empty() {
                crate::store::feed::head(tx)? + 1
            } else {
                seq
            };
            // Read after the writes, under the write lock: the newest state there is.
            let mut updates = Vec::with_capacity(touched.len());
            for &(kind, id) in &touched {
                updates.extend(feed::read_object(tx, kind, id)?);
            }
            Ok(Committed {
                value,
                seq,
                updates,
                journaled,
                journal_seq,
            })
        })?;
        // On disk before the answer, so that a restore can re-apply it (`journal`). The change
        // is committed either way; if the journal cannot be written the answer is a 503 and a
        // retry (revoking again) journals it.
        if let Err(e) = app
            .journal
            .record(
                committed.journal_seq,
                &committed.updates,
                &committed.journaled,
            )
        {
            tracing::error!(error = %e, path = %app.journal.path().display(), "writing the revocation journal failed");
            return Err(ApiError::Unavailable { retry_after: 1 });
        }
        Ok(committed)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("database task failed: {e}")))??;
    for update in committed.updates {
        feed::apply(app, update, committed.seq);
    }
    if committed.seq > 0 {
        // Every server on the database has it before the answer: a revocation is refused
        // everywhere, and a new session or key works everywhere, from the next request on.
        let config = &app.config;
        match actor {
            // The shell says which server did not confirm, and exits 1.
            Actor::System(_) => {
                feed::confirm(app, committed.seq, config.server.apply_timeout.0).await?
            }
            // A request waits a lease at most: by then a server that has not confirmed has
            // stopped answering authenticated requests (see `feed::confirm`), so the promise
            // holds and the committed change is answered as done.
            Actor::Anonymous(_) | Actor::Caller(_) => {
                let lease = config.cluster.lease.0 + std::time::Duration::from_millis(250);
                match feed::confirm(app, committed.seq, lease).await {
                    Ok(()) => {}
                    Err(ApiError::NotConfirmed { servers, .. }) => tracing::warn!(
                        seq = committed.seq,
                        "not confirmed within the lease by {servers}; they refuse requests now"
                    ),
                    // The servers table could not be read: waiting out the lease keeps the
                    // promise all the same, and the committed change is not reported as failed.
                    Err(other) => {
                        tracing::warn!(error = %other, "confirming a change failed; waiting a lease");
                        tokio::time::sleep(lease).await;
                    }
                }
            }
        }
    }
    Ok(committed.value)
}

/// Refuses a change whose credential was revoked (or whose user was deactivated or demoted)
/// after the request was authenticated: the write sees the committed state, so a revoke that
/// answered before this commit wins.
fn recheck(tx: &Db<'_>, actor: &Actor) -> Result<(), ApiError> {
    let Some(p) = actor.principal() else {
        return Ok(());
    };
    let now = crate::domain::now();
    let state = match (p.method, &p.key, p.session_id) {
        (Method::ApiKey, Some(key), _) => credentials::key(tx, key.id)?,
        (Method::Jwt, _, Some(sid)) => credentials::session(tx, sid)?,
        _ => {
            return Err(ApiError::Internal(
                "a principal without a credential".into(),
            ))
        }
    };
    let refused = || match p.method {
        Method::ApiKey => ApiError::ApiKeyRevoked,
        Method::Jwt => ApiError::TokenNotValid,
    };
    let Some(state) = state else {
        return Err(refused());
    };
    if state.revoked || state.expires_at.is_some_and(|at| at <= now) || !state.user_active {
        return Err(refused());
    }
    if state.user_id != p.user_id || state.role < p.role {
        return Err(ApiError::denied(
            "your role changed while this request was running; send it again",
        ));
    }
    Ok(())
}

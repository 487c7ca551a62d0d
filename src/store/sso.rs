//! The `sso_providers` and `sso_identities` tables: each organization's identity providers
//! (contract 10.2) and who its users are at them. A provider's kind settings are JSON that
//! `ops::sso` reads and validates; its secret is stored sealed.

use super::{args, Db, Row, StoreResult};
use crate::domain::{now, Id, UnixTime};

/// A provider as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRow {
    pub id: Id,
    pub organization_id: Id,
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    /// JSON array of lower-case domains.
    pub email_domains: String,
    /// JSON array of `{"group", "role"}`.
    pub role_mapping: String,
    pub default_role: Option<String>,
    pub jit_provisioning: bool,
    pub enforce: bool,
    /// JSON object of the kind's settings, secrets excluded.
    pub settings: String,
    /// The kind's secret, sealed; empty: none.
    pub secret: String,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

const COLUMNS: &str = "id, organization_id, name, kind, enabled, email_domains, role_mapping, \
                       default_role, jit_provisioning, enforce, settings, secret, created_at, \
                       updated_at";

fn from_row(row: &Row<'_>) -> StoreResult<ProviderRow> {
    Ok(ProviderRow {
        id: row.get(0)?,
        organization_id: row.get(1)?,
        name: row.get(2)?,
        kind: row.get(3)?,
        enabled: row.get(4)?,
        email_domains: row.get(5)?,
        role_mapping: row.get(6)?,
        default_role: row.get(7)?,
        jit_provisioning: row.get(8)?,
        enforce: row.get(9)?,
        settings: row.get(10)?,
        secret: row.get(11)?,
        created_at: row.get(12)?,
        updated_at: row.get(13)?,
    })
}

/// Inserts `p` (its id, secret and times are the table's); the new id.
pub fn create(db: &Db<'_>, p: &ProviderRow) -> StoreResult<Id> {
    let at = now();
    db.query_row(
        "INSERT INTO sso_providers (organization_id, name, kind, enabled, email_domains,
                role_mapping, default_role, jit_provisioning, enforce, settings, created_at,
                updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11) RETURNING id",
        args![
            p.organization_id,
            p.name,
            p.kind,
            p.enabled,
            p.email_domains,
            p.role_mapping,
            p.default_role,
            p.jit_provisioning,
            p.enforce,
            p.settings,
            at
        ],
        |r| r.get(0),
    )
}

/// Writes every field of `p` but its organization, kind and creation time.
pub fn update(db: &Db<'_>, p: &ProviderRow) -> StoreResult<()> {
    db.execute(
        "UPDATE sso_providers SET name = ?2, enabled = ?3, email_domains = ?4, role_mapping = ?5,
                default_role = ?6, jit_provisioning = ?7, enforce = ?8, settings = ?9,
                secret = ?10, updated_at = ?11
         WHERE id = ?1",
        args![
            p.id,
            p.name,
            p.enabled,
            p.email_domains,
            p.role_mapping,
            p.default_role,
            p.jit_provisioning,
            p.enforce,
            p.settings,
            p.secret,
            now()
        ],
    )?;
    Ok(())
}

pub fn get(db: &Db<'_>, id: Id) -> StoreResult<Option<ProviderRow>> {
    db.query_opt(
        &format!("SELECT {COLUMNS} FROM sso_providers WHERE id = ?1"),
        args![id],
        from_row,
    )
}

/// The organization's providers, oldest first.
pub fn of_organization(db: &Db<'_>, organization_id: Id) -> StoreResult<Vec<ProviderRow>> {
    db.query_map(
        &format!("SELECT {COLUMNS} FROM sso_providers WHERE organization_id = ?1 ORDER BY id"),
        args![organization_id],
        from_row,
    )
}

/// Every enabled provider of the installation (a handful: the sign-in looks among them for
/// the one that serves an address's domain).
pub fn enabled(db: &Db<'_>) -> StoreResult<Vec<ProviderRow>> {
    db.query_map(
        &format!("SELECT {COLUMNS} FROM sso_providers WHERE enabled = 1 ORDER BY id"),
        args![],
        from_row,
    )
}

pub fn delete(db: &Db<'_>, id: Id) -> StoreResult<()> {
    for table in ["sso_identities", "sso_sign_ins", "sso_codes"] {
        db.execute(
            &format!("DELETE FROM {table} WHERE provider_id = ?1"),
            args![id],
        )?;
    }
    db.execute("DELETE FROM sso_providers WHERE id = ?1", args![id])?;
    Ok(())
}

/// The user known at `provider` as `subject`.
pub fn user_of(db: &Db<'_>, provider: Id, subject: &str) -> StoreResult<Option<Id>> {
    db.query_opt(
        "SELECT user_id FROM sso_identities WHERE provider_id = ?1 AND subject = ?2",
        args![provider, subject],
        |r| r.get(0),
    )
}

/// Whether a user of an organization other than `organization_id` has an address at
/// `domain` (lower case, as addresses are stored).
pub fn domain_used_elsewhere(db: &Db<'_>, domain: &str, organization_id: Id) -> StoreResult<bool> {
    let suffix = format!("%@{domain}");
    Ok(db
        .query_opt(
            "SELECT 1 FROM users WHERE email LIKE ?1 AND organization_id <> ?2 LIMIT 1",
            args![suffix, organization_id],
            |_| Ok(()),
        )?
        .is_some())
}

/// Who `user_id` is at `provider`, if they signed in through it.
pub fn subject_of(db: &Db<'_>, provider: Id, user_id: Id) -> StoreResult<Option<String>> {
    db.query_opt(
        "SELECT subject FROM sso_identities WHERE provider_id = ?1 AND user_id = ?2",
        args![provider, user_id],
        |r| r.get(0),
    )
}

/// Records that `user_id` is `subject` at `provider` (a user has one subject per provider).
pub fn link(db: &Db<'_>, provider: Id, subject: &str, user_id: Id) -> StoreResult<()> {
    db.execute(
        "DELETE FROM sso_identities WHERE provider_id = ?1 AND user_id = ?2",
        args![provider, user_id],
    )?;
    db.execute(
        "INSERT INTO sso_identities (provider_id, subject, user_id) VALUES (?1, ?2, ?3)",
        args![provider, subject, user_id],
    )?;
    Ok(())
}

/// Who each user linked to `provider` is there: `(user, subject)`.
pub fn links(db: &Db<'_>, provider: Id) -> StoreResult<Vec<(Id, String)>> {
    db.query_map(
        "SELECT user_id, subject FROM sso_identities WHERE provider_id = ?1 ORDER BY user_id",
        args![provider],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Puts the provider's next scheduled sync `interval_ms` from now (the database's clock): a new
/// provider's first sync waits a whole interval, time for a dry run.
pub fn schedule_sync(db: &Db<'_>, provider: Id, interval_ms: i64) -> StoreResult<()> {
    let now_ms = super::feed::clock_ms(db)?;
    db.execute(
        "UPDATE sso_providers SET sync_due_ms = ?2 WHERE id = ?1",
        args![provider, now_ms + interval_ms],
    )?;
    Ok(())
}

/// Takes the provider's next scheduled sync if it is due at `now_ms` (the database's clock),
/// moving it `interval_ms` on: of several servers, one syncs.
pub fn take_due_sync(db: &Db<'_>, provider: Id, interval_ms: i64) -> StoreResult<bool> {
    let now_ms = super::feed::clock_ms(db)?;
    Ok(db.execute(
        "UPDATE sso_providers SET sync_due_ms = ?2 WHERE id = ?1 AND sync_due_ms <= ?3",
        args![provider, now_ms + interval_ms, now_ms],
    )? == 1)
}

/// An OpenID sign-in in flight, between the redirect to the provider and its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    pub state_hash: String,
    pub provider_id: Id,
    pub browser_hash: String,
    pub nonce: String,
    pub verifier: String,
    pub redirect_uri: String,
    /// The address that started it (an IPv6 client by its /64).
    pub client: String,
}

/// How many sign-ins may be in flight.
#[derive(Debug, Clone, Copy)]
pub struct InFlight {
    pub per_client: i64,
    pub total: i64,
}

/// Records a sign-in in flight for `ttl_ms` (the database's clock), unless as many as
/// `limit` allows are in flight already, from its client or in all (then `false`): the table
/// cannot grow without bound, and one client cannot fill it for everyone.
pub fn begin_sign_in(db: &Db<'_>, s: &SignIn, ttl_ms: i64, limit: InFlight) -> StoreResult<bool> {
    let now_ms = super::feed::clock_ms(db)?;
    db.execute(
        "DELETE FROM sso_sign_ins WHERE expires_ms < ?1",
        args![now_ms],
    )?;
    let theirs: i64 = db.query_row(
        "SELECT COUNT(*) FROM sso_sign_ins WHERE client = ?1",
        args![s.client],
        |r| r.get(0),
    )?;
    if theirs >= limit.per_client {
        return Ok(false);
    }
    let pending: i64 = db.query_row("SELECT COUNT(*) FROM sso_sign_ins", args![], |r| r.get(0))?;
    if pending >= limit.total {
        return Ok(false);
    }
    db.execute(
        "INSERT INTO sso_sign_ins (state_hash, provider_id, browser_hash, nonce, verifier,
                redirect_uri, client, expires_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        args![
            s.state_hash,
            s.provider_id,
            s.browser_hash,
            s.nonce,
            s.verifier,
            s.redirect_uri,
            s.client,
            now_ms + ttl_ms
        ],
    )?;
    Ok(true)
}

/// Takes the sign-in whose state hashes to `state_hash`, if the same browser started it and
/// it has not expired: once (a second take finds nothing).
pub fn take_sign_in(
    db: &Db<'_>,
    state_hash: &str,
    browser_hash: &str,
) -> StoreResult<Option<SignIn>> {
    let now_ms = super::feed::clock_ms(db)?;
    let taken = db.query_opt(
        "DELETE FROM sso_sign_ins WHERE state_hash = ?1 AND browser_hash = ?2
         RETURNING provider_id, nonce, verifier, redirect_uri, client, expires_ms",
        args![state_hash, browser_hash],
        |r| {
            Ok((
                SignIn {
                    state_hash: state_hash.to_string(),
                    provider_id: r.get(0)?,
                    browser_hash: browser_hash.to_string(),
                    nonce: r.get(1)?,
                    verifier: r.get(2)?,
                    redirect_uri: r.get(3)?,
                    client: r.get(4)?,
                },
                r.get::<i64>(5)?,
            ))
        },
    )?;
    Ok(taken
        .filter(|(_, expires_ms)| *expires_ms >= now_ms)
        .map(|(sign_in, _)| sign_in))
}

/// A one-time code: what it is good for, and for which browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeCode {
    pub code_hash: String,
    pub browser_hash: String,
    pub provider_id: Id,
    pub user_id: Id,
}

/// Records a one-time code, good for `ttl_ms` (the database's clock).
pub fn put_code(db: &Db<'_>, code: &OneTimeCode, ttl_ms: i64) -> StoreResult<()> {
    let now_ms = super::feed::clock_ms(db)?;
    db.execute("DELETE FROM sso_codes WHERE expires_ms < ?1", args![now_ms])?;
    db.execute(
        "INSERT INTO sso_codes (code_hash, browser_hash, provider_id, user_id, expires_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![
            code.code_hash,
            code.browser_hash,
            code.provider_id,
            code.user_id,
            now_ms + ttl_ms
        ],
    )?;
    Ok(())
}

/// Takes the one-time code that hashes to `code_hash`, if the browser that signed in brings
/// it and it has not expired: `(provider, user)`, once.
pub fn take_code(
    db: &Db<'_>,
    code_hash: &str,
    browser_hash: &str,
) -> StoreResult<Option<(Id, Id)>> {
    let now_ms = super::feed::clock_ms(db)?;
    let taken = db.query_opt(
        "DELETE FROM sso_codes WHERE code_hash = ?1 AND browser_hash = ?2
         RETURNING provider_id, user_id, expires_ms",
        args![code_hash, browser_hash],
        |r| Ok((r.get::<Id>(0)?, r.get::<Id>(1)?, r.get::<i64>(2)?)),
    )?;
    Ok(taken
        .filter(|t| t.2 >= now_ms)
        .map(|(provider, user, _)| (provider, user)))
}

/// An LDAP provider's settings as stored (`settings`), its bind password apart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LdapSettings {
    pub url: String,
    pub start_tls: bool,
    pub bind_dn: String,
    pub user_base: String,
    pub user_filter: String,
    pub email_attribute: String,
    pub name_attribute: String,
    pub group_attribute: String,
    pub nested_groups: bool,
    /// Seconds between scheduled syncs.
    pub sync_interval: u64,
}

/// An OpenID provider's settings as stored (`settings`), its client secret apart. The
/// endpoints are the issuer's discovery document's, read when the provider is created or
/// changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

/// A role mapping entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredMapping {
    pub group: String,
    pub role: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheduled_sync_is_taken_once_when_due() {
        let (_dir, store) = crate::store::open_temp();
        store
            .write_blocking(|db| -> crate::store::StoreResult<_> {
                let org = crate::store::organizations::create(db, "Acme")?;
                let row = ProviderRow {
                    id: 0,
                    organization_id: org,
                    name: "Directory".into(),
                    kind: "ldap".into(),
                    enabled: true,
                    email_domains: r#"["example.org"]"#.into(),
                    role_mapping: "[]".into(),
                    default_role: None,
                    jit_provisioning: false,
                    enforce: false,
                    settings: "{}".into(),
                    secret: String::new(),
                    created_at: 0,
                    updated_at: 0,
                };
                let id = create(db, &row)?;
                schedule_sync(db, id, 60_000)?;
                assert!(!take_due_sync(db, id, 60_000)?, "not due for a minute");
                schedule_sync(db, id, -1)?;
                assert!(take_due_sync(db, id, 60_000)?, "due");
                assert!(
                    !take_due_sync(db, id, 60_000)?,
                    "taken: the next is a minute away"
                );
                let email = crate::domain::Email::parse("a@example.org").unwrap();
                let user = crate::store::users::create(
                    db,
                    &crate::store::users::NewUser {
                        organization_id: org,
                        email: &email,
                        name: "A",
                        role: crate::domain::Role::Viewer,
                        password_hash: "h",
                        password_set_by_other: false,
                        password_temporary: false,
                    },
                )?;
                link(db, id, "uid=a,dc=example,dc=org", user)?;
                // A user has one subject per provider: a new one replaces the old.
                link(db, id, "uid=a2,dc=example,dc=org", user)?;
                assert_eq!(user_of(db, id, "uid=a,dc=example,dc=org")?, None);
                assert_eq!(user_of(db, id, "uid=a2,dc=example,dc=org")?, Some(user));
                assert_eq!(
                    links(db, id)?,
                    vec![(user, "uid=a2,dc=example,dc=org".into())]
                );
                assert_eq!(
                    subject_of(db, id, user)?.as_deref(),
                    Some("uid=a2,dc=example,dc=org")
                );
                Ok(())
            })
            .unwrap();
    }
}

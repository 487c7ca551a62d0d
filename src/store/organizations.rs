//! The `organizations` table.

use super::{args, Db, StoreResult};
use crate::domain::{now, Id, UnixTime};

#[derive(Debug, Clone)]
pub struct Organization {
    pub id: Id,
    pub name: String,
    pub created_at: UnixTime,
}

pub fn create(db: &Db<'_>, name: &str) -> StoreResult<Id> {
    db.query_row(
        "INSERT INTO organizations (name, created_at) VALUES (?1, ?2) RETURNING id",
        args![name, now()],
        |row| row.get(0),
    )
    .map_err(|e| super::conflict_on_unique(e, "an organization with this name already exists"))
}

pub fn get(db: &Db<'_>, id: Id) -> StoreResult<Organization> {
    db.query_row(
        "SELECT id, name, created_at FROM organizations WHERE id = ?1",
        args![id],
        |row| {
            Ok(Organization {
                id: row.get(0)?,
                name: row.get(1)?,
                created_at: row.get(2)?,
            })
        },
    )
}

/// Organizations are named by people on the command line; names are unique ignoring case,
/// so a name matches at most one.
pub fn find_by_name(db: &Db<'_>, name: &str) -> StoreResult<Option<Id>> {
    db.query_opt(
        "SELECT id FROM organizations WHERE lower(name) = lower(?1)",
        args![name],
        |row| row.get(0),
    )
}

/// Every organization's id and name, for the live state.
pub fn names(db: &Db<'_>) -> StoreResult<Vec<(Id, String)>> {
    db.query_map("SELECT id, name FROM organizations", args![], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })
}

pub fn rename(db: &Db<'_>, id: Id, name: &str) -> StoreResult<()> {
    db.execute(
        "UPDATE organizations SET name = ?2 WHERE id = ?1",
        args![id, name],
    )
    .map_err(|e| super::conflict_on_unique(e, "an organization with this name already exists"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open_temp, StoreError};

    #[test]
    fn names_are_unique_ignoring_case() {
        let (_dir, store) = open_temp();
        let acme = store.write_blocking(|tx| create(tx, "Acme")).unwrap();
        let again = store.write_blocking(|tx| create(tx, "ACME"));
        assert!(matches!(again, Err(StoreError::Conflict(_))));
        let globex = store.write_blocking(|tx| create(tx, "Globex")).unwrap();
        let renamed = store.write_blocking(|tx| rename(tx, globex, "acme"));
        assert!(matches!(renamed, Err(StoreError::Conflict(_))));
        assert_eq!(
            store.read_blocking(|c| find_by_name(c, "aCmE")).unwrap(),
            Some(acme)
        );
    }
}

/// An organization's security policy as stored (`security_policies`); `None` when it never
/// set one (the defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRow {
    pub require_mfa: String,
    pub key_max_lifetime_days: Option<i64>,
    pub allow_never_expiring_keys: bool,
    pub require_ip_allowlist_for_write_scopes: bool,
    pub session_max_lifetime: Option<i64>,
}

pub fn policy(db: &Db<'_>, id: Id) -> StoreResult<Option<PolicyRow>> {
    db.query_opt(
        "SELECT require_mfa, key_max_lifetime_days, allow_never_expiring_keys,
                require_ip_allowlist_for_write_scopes, session_max_lifetime
         FROM security_policies WHERE organization_id = ?1",
        args![id],
        |row| {
            Ok(PolicyRow {
                require_mfa: row.get(0)?,
                key_max_lifetime_days: row.get(1)?,
                allow_never_expiring_keys: row.get(2)?,
                require_ip_allowlist_for_write_scopes: row.get(3)?,
                session_max_lifetime: row.get(4)?,
            })
        },
    )
}

pub fn set_policy(db: &Db<'_>, id: Id, policy: &PolicyRow) -> StoreResult<()> {
    db.execute(
        "INSERT INTO security_policies (organization_id, require_mfa, key_max_lifetime_days,
                                        allow_never_expiring_keys,
                                        require_ip_allowlist_for_write_scopes,
                                        session_max_lifetime)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (organization_id) DO UPDATE SET
             require_mfa = excluded.require_mfa,
             key_max_lifetime_days = excluded.key_max_lifetime_days,
             allow_never_expiring_keys = excluded.allow_never_expiring_keys,
             require_ip_allowlist_for_write_scopes = excluded.require_ip_allowlist_for_write_scopes,
             session_max_lifetime = excluded.session_max_lifetime",
        args![
            id,
            policy.require_mfa,
            policy.key_max_lifetime_days,
            policy.allow_never_expiring_keys,
            policy.require_ip_allowlist_for_write_scopes,
            policy.session_max_lifetime
        ],
    )?;
    Ok(())
}

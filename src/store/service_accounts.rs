//! Service accounts (contract 10.4): rows of `users` marked `service_account`, read and
//! written here; `users::get` reads one like any user, which the live state needs.

use super::users::{self, User, COLUMNS};
use super::{args, conflict_on_unique, Db, StoreResult};
use crate::domain::{now, Id, Role};

pub struct NewServiceAccount<'a> {
    pub organization_id: Id,
    pub name: &'a str,
    pub role: Role,
    pub description: &'a str,
    pub created_by: Option<Id>,
}

/// What stands in a service account's `email`: unique, and not an address (no `@`), so that
/// no login, directory or identity provider can ever be matched to it.
fn handle() -> String {
    let mut bytes = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    format!("service-account:{}", crate::domain::hex(&bytes))
}

/// Stands in a service account's password hash: not a PHC string, so nothing verifies.
const NO_PASSWORD: &str = "!service-account";

pub fn create(db: &Db<'_>, account: &NewServiceAccount<'_>) -> StoreResult<Id> {
    let at = now();
    db.query_row(
        "INSERT INTO users (organization_id, email, name, role, password_hash,
                            password_changed_at, created_at, service_account, description,
                            created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 1, ?7, ?8) RETURNING id",
        args![
            account.organization_id,
            handle(),
            account.name,
            account.role.as_str(),
            NO_PASSWORD,
            at,
            account.description,
            account.created_by
        ],
        |r| r.get(0),
    )
    .map_err(|e| conflict_on_unique(e, "a service account with this handle already exists"))
}

/// A service account of the organization that is not deleted.
pub fn get(db: &Db<'_>, organization_id: Id, id: Id) -> StoreResult<Option<User>> {
    db.query_opt(
        &format!(
            "SELECT {COLUMNS} FROM users WHERE id = ?1 AND organization_id = ?2 \
             AND service_account = 1 AND deleted_at IS NULL"
        ),
        args![id, organization_id],
        users::from_row,
    )
}

/// The organization's (not deleted) service account called `name`, ignoring case.
pub fn find_by_name(db: &Db<'_>, organization_id: Id, name: &str) -> StoreResult<Option<User>> {
    db.query_opt(
        &format!(
            "SELECT {COLUMNS} FROM users WHERE organization_id = ?1 AND service_account = 1 \
             AND deleted_at IS NULL AND LOWER(name) = LOWER(?2)"
        ),
        args![organization_id, name],
        users::from_row,
    )
}

/// Every (not deleted) service account of the organization, oldest first.
pub fn of_organization(db: &Db<'_>, organization_id: Id) -> StoreResult<Vec<User>> {
    db.query_map(
        &format!(
            "SELECT {COLUMNS} FROM users WHERE organization_id = ?1 AND service_account = 1 \
             AND deleted_at IS NULL ORDER BY id"
        ),
        args![organization_id],
        users::from_row,
    )
}

/// Is another (not deleted) service account of the organization called `name` (ignoring case)?
pub fn name_taken(db: &Db<'_>, organization_id: Id, name: &str, except: Id) -> StoreResult<bool> {
    db.query_row(
        "SELECT COUNT(*) FROM users WHERE organization_id = ?1 AND service_account = 1
         AND deleted_at IS NULL AND LOWER(name) = LOWER(?2) AND id <> ?3",
        args![organization_id, name, except],
        |r| r.get::<i64>(0),
    )
    .map(|n| n > 0)
}

/// One page of the organization's service accounts (searched by name and description).
pub fn page(
    db: &Db<'_>,
    organization_id: Id,
    listing: &super::Listing,
) -> StoreResult<(u64, Vec<User>)> {
    super::list(
        db,
        super::ListOf {
            from: "users",
            columns: COLUMNS,
            filter: "organization_id = ?1 AND service_account = 1 AND deleted_at IS NULL",
            params: args![organization_id],
            id: "id",
            searched: &["name", "description"],
            kept: None,
            row: users::from_row,
        },
        listing,
    )
}

/// How many keys of each of `ids` are usable now (neither revoked nor expired): one query.
pub fn key_counts(db: &Db<'_>, ids: &[Id]) -> StoreResult<std::collections::HashMap<Id, i64>> {
    if ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let at = now();
    let mut params: Vec<&dyn super::sql::Param> = vec![&at];
    params.extend(ids.iter().map(|id| id as &dyn super::sql::Param));
    let counted: Vec<(Id, i64)> = db.query_map(
        &format!(
            "SELECT user_id, COUNT(*) FROM api_keys WHERE user_id IN ({}) \
             AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?1) GROUP BY user_id",
            super::placeholders(2, ids.len())
        ),
        &params,
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(counted.into_iter().collect())
}

pub fn set_description(db: &Db<'_>, id: Id, description: &str) -> StoreResult<()> {
    db.execute(
        "UPDATE users SET description = ?2 WHERE id = ?1",
        args![id, description],
    )?;
    Ok(())
}

/// Deleted: inactive for good and hidden; the row stays for what refers to it.
pub fn mark_deleted(db: &Db<'_>, id: Id) -> StoreResult<()> {
    db.execute(
        "UPDATE users SET deleted_at = ?2, is_active = 0 WHERE id = ?1",
        args![id, now()],
    )?;
    Ok(())
}

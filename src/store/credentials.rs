//! The state of a credential as committed: what a write re-checks inside its transaction.

use super::{Db, StoreResult};
use crate::domain::{Id, Role, UnixTime};

/// A key or session with its user, as the database holds them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialState {
    pub user_id: Id,
    pub role: Role,
    pub user_active: bool,
    pub revoked: bool,
    pub expires_at: Option<UnixTime>,
}

fn state(row: &super::Row<'_>) -> StoreResult<(Id, String, bool, bool, Option<UnixTime>)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn finish(
    row: Option<(Id, String, bool, bool, Option<UnixTime>)>,
) -> StoreResult<Option<CredentialState>> {
    let Some((user_id, role, user_active, revoked, expires_at)) = row else {
        return Ok(None);
    };
    let role = role
        .parse()
        .map_err(|_| super::StoreError::Database(format!("unknown role {role:?}")))?;
    Ok(Some(CredentialState {
        user_id,
        role,
        user_active,
        revoked,
        expires_at,
    }))
}

pub fn key(db: &Db<'_>, id: Id) -> StoreResult<Option<CredentialState>> {
    let row = db.query_opt(
        "SELECT k.user_id, u.role, u.is_active, k.revoked_at IS NOT NULL, k.expires_at
         FROM api_keys k JOIN users u ON u.id = k.user_id
         WHERE k.id = ?1 AND k.organization_id = u.organization_id",
        super::args![id],
        state,
    )?;
    finish(row)
}

pub fn session(db: &Db<'_>, id: Id) -> StoreResult<Option<CredentialState>> {
    let row = db.query_opt(
        "SELECT s.user_id, u.role, u.is_active, s.revoked_at IS NOT NULL, s.expires_at
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1",
        super::args![id],
        state,
    )?;
    finish(row)
}

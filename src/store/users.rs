//! The `users` table: accounts, roles, password hashes.

use super::{args, Row};

use super::{conflict_on_unique, Db, StoreError, StoreResult};
use crate::domain::{now, Email, Id, Role, UnixTime};

#[derive(Debug, Clone)]
pub struct User {
    pub id: Id,
    pub organization_id: Id,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub is_active: bool,
    pub password_hash: String,
    pub created_at: UnixTime,
    pub mfa_enabled: bool,
    /// Moves on whenever the user's sessions are ended wholesale (see `end_sessions`).
    pub session_epoch: i64,
    /// The password is one someone else chose; the user has not replaced it yet.
    pub password_set_by_other: bool,
    /// And it is temporary: until the user replaces it, their sessions open only the password
    /// change and `me`.
    pub password_temporary: bool,
    /// A service account (contract 10.4): no email, password or session; its keys act as it.
    pub service_account: bool,
    /// A service account's description (empty for people).
    pub description: String,
    /// Who made it (service accounts).
    pub created_by: Option<Id>,
}

pub struct NewUser<'a> {
    pub organization_id: Id,
    pub email: &'a Email,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
    /// Chosen by someone else (generated, or typed by an administrator).
    pub password_set_by_other: bool,
    /// To be replaced before anything else (the first owner's generated password).
    pub password_temporary: bool,
}

pub(super) const COLUMNS: &str =
    "id, organization_id, email, name, role, is_active, password_hash, \
                       created_at, mfa_enabled, session_epoch, password_set_by_other, \
                       password_temporary, service_account, description, created_by";

pub(super) fn from_row(row: &Row<'_>) -> StoreResult<User> {
    let role: String = row.get(4)?;
    Ok(User {
        id: row.get(0)?,
        organization_id: row.get(1)?,
        email: row.get(2)?,
        name: row.get(3)?,
        role: role
            .parse()
            .map_err(|_| StoreError::Database(format!("unknown role {role:?}")))?,
        is_active: row.get(5)?,
        password_hash: row.get(6)?,
        created_at: row.get(7)?,
        mfa_enabled: row.get(8)?,
        session_epoch: row.get(9)?,
        password_set_by_other: row.get(10)?,
        password_temporary: row.get(11)?,
        service_account: row.get(12)?,
        description: row.get(13)?,
        created_by: row.get(14)?,
    })
}

pub fn create(db: &Db<'_>, user: &NewUser<'_>) -> StoreResult<Id> {
    let at = now();
    db.query_row(
        "INSERT INTO users (organization_id, email, name, role, password_hash, password_changed_at,
                            created_at, password_set_by_other, password_temporary)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8) RETURNING id",
        args![
            user.organization_id,
            user.email.as_str(),
            user.name,
            user.role.as_str(),
            user.password_hash,
            at,
            user.password_set_by_other,
            user.password_temporary
        ],
        |r| r.get(0),
    )
    .map_err(|e| conflict_on_unique(e, "a user with this email already exists"))
}

pub fn get(db: &Db<'_>, id: Id) -> StoreResult<User> {
    db.query_row(
        &format!("SELECT {COLUMNS} FROM users WHERE id = ?1"),
        args![id],
        from_row,
    )
}

/// The person with this address (a service account has none).
pub fn find_by_email(db: &Db<'_>, email: &Email) -> StoreResult<Option<User>> {
    db.query_opt(
        &format!("SELECT {COLUMNS} FROM users WHERE email = ?1 AND service_account = 0"),
        args![email.as_str()],
        from_row,
    )
}

/// The organization's people (not its service accounts), oldest first.
pub fn of_organization(db: &Db<'_>, organization_id: Id) -> StoreResult<Vec<User>> {
    db.query_map(
        &format!(
            "SELECT {COLUMNS} FROM users WHERE organization_id = ?1 AND service_account = 0 \
             ORDER BY id"
        ),
        args![organization_id],
        from_row,
    )
}

/// Who owns keys: the users of `ids` (people and service accounts), in one query.
pub fn some(db: &Db<'_>, ids: &[Id]) -> StoreResult<Vec<User>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let params: Vec<&dyn super::sql::Param> =
        ids.iter().map(|id| id as &dyn super::sql::Param).collect();
    db.query_map(
        &format!(
            "SELECT {COLUMNS} FROM users WHERE id IN ({})",
            super::placeholders(1, ids.len())
        ),
        &params,
        from_row,
    )
}

pub fn all(db: &Db<'_>) -> StoreResult<Vec<User>> {
    db.query_map(
        &format!("SELECT {COLUMNS} FROM users ORDER BY id"),
        args![],
        from_row,
    )
}

/// Replaces the password and keeps the old hash in the history (the last few are refused).
/// `by_other`: an administrator set it, not the user.
/// `temporary`: set by an administrator for the user to replace (contract 10.6).
pub fn set_password(
    db: &Db<'_>,
    id: Id,
    password_hash: &str,
    by_other: bool,
    temporary: bool,
) -> StoreResult<()> {
    let at = now();
    let changed = db.execute(
        "INSERT INTO password_history (user_id, password_hash, created_at)
         SELECT id, password_hash, ?2 FROM users WHERE id = ?1",
        args![id, at],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    db.execute(
        "UPDATE users SET password_hash = ?2, password_changed_at = ?3, password_set_by_other = ?4,
                          password_temporary = ?5
         WHERE id = ?1",
        args![id, password_hash, at, by_other, temporary],
    )?;
    Ok(())
}

/// The current hash and the previous ones, newest first, `limit` in all.
pub fn recent_password_hashes(db: &Db<'_>, id: Id, limit: usize) -> StoreResult<Vec<String>> {
    let mut hashes = vec![get(db, id)?.password_hash];
    hashes.extend(db.query_map(
        "SELECT password_hash FROM password_history WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
        args![id, limit.saturating_sub(1)],
        |row| row.get(0),
    )?);
    Ok(hashes)
}

/// The pending or active TOTP secret, as stored (sealed).
pub fn mfa_secret(db: &Db<'_>, id: Id) -> StoreResult<Option<String>> {
    db.query_row(
        "SELECT mfa_secret FROM users WHERE id = ?1",
        args![id],
        |row| row.get(0),
    )
}

/// Every stored TOTP secret, pending or active, by user.
pub fn all_mfa_secrets(db: &Db<'_>) -> StoreResult<Vec<(Id, String)>> {
    db.query_map(
        "SELECT id, mfa_secret FROM users WHERE mfa_secret IS NOT NULL",
        args![],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
}

/// Replaces a stored secret as it is (the same secret in another form), enabled or not.
pub fn replace_mfa_secret(db: &Db<'_>, id: Id, stored: &str) -> StoreResult<()> {
    db.execute(
        "UPDATE users SET mfa_secret = ?2 WHERE id = ?1",
        args![id, stored],
    )?;
    Ok(())
}

/// Stores a new pending secret (in the sealed form `auth::sealed` makes), unless TOTP is on.
pub fn set_mfa_secret(db: &Db<'_>, id: Id, secret: &str) -> StoreResult<()> {
    db.execute(
        "UPDATE users SET mfa_secret = ?2, mfa_last_step = 0 WHERE id = ?1 AND totp_enabled = 0",
        args![id, secret],
    )?;
    Ok(())
}

/// Whether TOTP is one of the user's second factors (a pending secret is not).
pub fn totp_enabled(db: &Db<'_>, id: Id) -> StoreResult<bool> {
    db.query_row(
        "SELECT totp_enabled FROM users WHERE id = ?1",
        args![id],
        |row| row.get(0),
    )
}

/// TOTP on, with the pending secret: MFA is on.
pub fn enable_totp(db: &Db<'_>, id: Id) -> StoreResult<()> {
    db.execute(
        "UPDATE users SET totp_enabled = 1, mfa_enabled = 1 WHERE id = ?1",
        args![id],
    )?;
    Ok(())
}

/// TOTP off; MFA stays on while a passkey remains (`refresh_mfa`).
pub fn disable_totp(db: &Db<'_>, id: Id) -> StoreResult<()> {
    db.execute(
        "UPDATE users SET totp_enabled = 0, mfa_secret = NULL, mfa_last_step = 0 WHERE id = ?1",
        args![id],
    )?;
    refresh_mfa(db, id)
}

/// `mfa_enabled` as the factors left say: on with TOTP or a passkey. With none, the
/// recovery codes go too.
pub fn refresh_mfa(db: &Db<'_>, id: Id) -> StoreResult<()> {
    db.execute(
        "UPDATE users SET mfa_enabled = CASE WHEN totp_enabled = 1 OR EXISTS
             (SELECT 1 FROM webauthn_credentials w WHERE w.user_id = users.id) THEN 1 ELSE 0 END
         WHERE id = ?1",
        args![id],
    )?;
    if !get(db, id)?.mfa_enabled {
        db.execute("DELETE FROM recovery_codes WHERE user_id = ?1", args![id])?;
    }
    Ok(())
}

/// Every second factor off (an MFA reset): TOTP, passkeys and recovery codes.
pub fn reset_mfa(db: &Db<'_>, id: Id) -> StoreResult<()> {
    db.execute(
        "UPDATE users SET mfa_enabled = 0, totp_enabled = 0, mfa_secret = NULL, mfa_last_step = 0
         WHERE id = ?1",
        args![id],
    )?;
    super::passkeys::delete_all(db, id)?;
    db.execute("DELETE FROM recovery_codes WHERE user_id = ?1", args![id])?;
    Ok(())
}

/// Records `step` as the last accepted TOTP step; `false` when it (or a later one) was
/// already accepted: the code is a replay. Atomic, so two parallel uses cannot both pass.
pub fn accept_totp_step(db: &Db<'_>, id: Id, step: i64) -> StoreResult<bool> {
    let changed = db.execute(
        "UPDATE users SET mfa_last_step = ?2 WHERE id = ?1 AND mfa_last_step < ?2",
        args![id, step],
    )?;
    Ok(changed == 1)
}

pub fn replace_recovery_codes(db: &Db<'_>, id: Id, hashes: &[String]) -> StoreResult<()> {
    db.execute("DELETE FROM recovery_codes WHERE user_id = ?1", args![id])?;
    for hash in hashes {
        db.execute(
            "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
            args![id, hash],
        )?;
    }
    Ok(())
}

/// How many of the user's recovery codes are not used yet.
pub fn recovery_codes_left(db: &Db<'_>, id: Id) -> StoreResult<i64> {
    db.query_row(
        "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        args![id],
        |row| row.get(0),
    )
}

/// Marks the unused code with this hash as used; `false` if there is none.
pub fn use_recovery_code(db: &Db<'_>, id: Id, hash: &str) -> StoreResult<bool> {
    let changed = db.execute(
        "UPDATE recovery_codes SET used_at = ?3
         WHERE id = (SELECT id FROM recovery_codes
                     WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL LIMIT 1)",
        args![id, hash, now()],
    )?;
    Ok(changed == 1)
}

/// One page of an organization's people (searched by email and name).
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
            filter: "organization_id = ?1 AND service_account = 0",
            params: args![organization_id],
            id: "id",
            searched: &["email", "name"],
            kept: None,
            row: from_row,
        },
        listing,
    )
}

pub fn set_role(db: &Db<'_>, id: Id, role: Role) -> StoreResult<()> {
    db.execute(
        "UPDATE users SET role = ?2 WHERE id = ?1",
        args![id, role.as_str()],
    )
    .map_err(|e| conflict_on_unique(e, "the organization already has an owner"))?;
    Ok(())
}

pub fn set_active(db: &Db<'_>, id: Id, active: bool) -> StoreResult<()> {
    db.execute(
        "UPDATE users SET is_active = ?2 WHERE id = ?1",
        args![id, active],
    )?;
    Ok(())
}

pub fn set_name(db: &Db<'_>, id: Id, name: &str) -> StoreResult<()> {
    db.execute("UPDATE users SET name = ?2 WHERE id = ?1", args![id, name])?;
    Ok(())
}

pub fn count(db: &Db<'_>) -> StoreResult<i64> {
    db.query_row("SELECT COUNT(*) FROM users", args![], |row| row.get(0))
}

/// Moves the user's session epoch on: a login that verified the password before this commit
/// cannot open its session after it (`session_epoch_is`). Called with every wholesale end of
/// sessions: password change or reset, deactivation.
pub fn bump_session_epoch(db: &Db<'_>, id: Id) -> StoreResult<()> {
    db.execute(
        "UPDATE users SET session_epoch = session_epoch + 1 WHERE id = ?1",
        args![id],
    )?;
    Ok(())
}

/// Whether the user is still active at the session epoch `epoch`.
pub fn may_open_session(db: &Db<'_>, id: Id, epoch: i64) -> StoreResult<bool> {
    Ok(db
        .query_opt(
            "SELECT session_epoch = ?2 AND is_active = 1 FROM users WHERE id = ?1",
            args![id, epoch],
            |row| row.get(0),
        )?
        .unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open_temp, organizations};

    #[test]
    fn email_is_unique_regardless_of_case() {
        let (_dir, store) = open_temp();
        store
            .write_blocking(|tx| -> crate::store::StoreResult<_> {
                let org = organizations::create(tx, "Acme")?;
                let email = Email::parse("ada@example.com").unwrap();
                create(
                    tx,
                    &NewUser {
                        password_set_by_other: false,
                        password_temporary: false,
                        organization_id: org,
                        email: &email,
                        name: "Ada",
                        role: Role::Owner,
                        password_hash: "x",
                    },
                )?;
                // Stored lower-case by Email, but the column is NOCASE as a second guard.
                let err = tx.execute(
                    "INSERT INTO users (organization_id, email, role, password_hash, password_changed_at, created_at)
                     VALUES (?1, 'ADA@example.com', 'viewer', 'x', 0, 0)",
                    args![org],
                );
                assert!(matches!(
                    err.map_err(|e| conflict_on_unique(e, "dup")),
                    Err(StoreError::Conflict(_))
                ));
                let found = find_by_email(tx, &Email::parse("ADA@EXAMPLE.COM").unwrap())?;
                assert_eq!(found.map(|u| u.name), Some("Ada".into()));
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn an_organization_has_at_most_one_owner() {
        let (_dir, store) = open_temp();
        let result = store.write_blocking(|tx| {
            let org = organizations::create(tx, "Acme")?;
            for (i, role) in [Role::Owner, Role::Owner].into_iter().enumerate() {
                let email = Email::parse(&format!("u{i}@example.com")).unwrap();
                create(
                    tx,
                    &NewUser {
                        password_set_by_other: false,
                        password_temporary: false,
                        organization_id: org,
                        email: &email,
                        name: "",
                        role,
                        password_hash: "x",
                    },
                )?;
            }
            Ok(())
        });
        assert!(matches!(result, Err(StoreError::Conflict(_))));
    }
}

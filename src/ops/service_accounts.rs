//! Service accounts (contract 10.4): identities of an organization for machines, with a role
//! and keys, no password and no login. Their keys act as them, so they outlive the people who
//! made them; deactivating or deleting one revokes its keys in the same change. Made and
//! managed by administrators (and the owner), never above the caller's own role, or from the
//! shell.

use super::{change, Actor, AppState, Change};
use crate::domain::{Id, Role};
use crate::error::ApiError;
use crate::store::feed::Kind;
use crate::store::service_accounts::{self, NewServiceAccount};
use crate::store::users;
use crate::store::users::User;

/// What `PATCH` changes; `None` leaves it.
#[derive(Debug, Clone, Default)]
pub struct Edit {
    pub name: Option<String>,
    pub description: Option<String>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

/// A role the actor may give: below the owner, and not above their own.
fn check_role(actor: &Actor, role: Role) -> Result<(), ApiError> {
    if role == Role::Owner {
        return Err(ApiError::field(
            "role",
            "a service account cannot be the owner",
        ));
    }
    if actor.principal().is_some_and(|p| role > p.role) {
        return Err(ApiError::denied(
            "you cannot give a service account a role above your own",
        ));
    }
    Ok(())
}

fn check_name_free(c: &Change<'_, '_>, org: Id, name: &str, id: Id) -> Result<(), ApiError> {
    if service_accounts::name_taken(c.tx, org, name, id)? {
        return Err(ApiError::Conflict(format!(
            "a service account named \"{name}\" already exists"
        )));
    }
    Ok(())
}

/// The organization's service account `id` (`404` for anything else: a person, a deleted
/// one, another organization's), inside a transaction.
pub fn find(db: &crate::store::Db<'_>, organization_id: Id, id: Id) -> Result<User, ApiError> {
    service_accounts::get(db, organization_id, id)?.ok_or(ApiError::NotFound)
}

/// The one an administrator's role reaches (the shell reaches every one).
fn manageable(actor: &Actor, account: &User) -> Result<(), ApiError> {
    if actor.principal().is_some_and(|p| account.role > p.role) {
        return Err(ApiError::denied(
            "that service account's role is above yours",
        ));
    }
    Ok(())
}

pub async fn create(
    app: &AppState,
    actor: &Actor,
    org: Id,
    name: String,
    role: Role,
    description: String,
) -> Result<User, ApiError> {
    check_role(actor, role)?;
    let by = actor.principal().map(|p| p.user_id);
    change(app, actor, move |c| {
        check_name_free(c, org, &name, 0)?;
        let id = service_accounts::create(
            c.tx,
            &NewServiceAccount {
                organization_id: org,
                name: &name,
                role,
                description: &description,
                created_by: by,
            },
        )?;
        let details = serde_json::json!({"name": &name, "role": role.as_str()});
        c.audit_in(
            org,
            "service_account.created",
            "service_account",
            id,
            Some(details.to_string()),
        )?;
        c.touch(Kind::User, id);
        Ok(users::get(c.tx, id)?)
    })
    .await
}

/// Renames, describes, changes the role of, deactivates (revoking every key at once) or
/// reactivates (its revoked keys stay revoked) a service account; audited with what changed.
pub async fn update(
    app: &AppState,
    actor: &Actor,
    org: Id,
    id: Id,
    edit: Edit,
) -> Result<User, ApiError> {
    if let Some(role) = edit.role {
        check_role(actor, role)?;
    }
    change(app, actor, move |c| {
        let before = find(c.tx, org, id)?;
        manageable(c.actor(), &before)?;
        let mut changed = serde_json::Map::new();
        if let Some(name) = edit.name.as_ref().filter(|n| **n != before.name) {
            check_name_free(c, org, name, id)?;
            users::set_name(c.tx, id, name)?;
            changed.insert("name".into(), name.as_str().into());
        }
        if let Some(description) = edit
            .description
            .as_ref()
            .filter(|d| **d != before.description)
        {
            service_accounts::set_description(c.tx, id, description)?;
            changed.insert("description".into(), true.into());
        }
        if let Some(role) = edit.role.filter(|r| *r != before.role) {
            users::set_role(c.tx, id, role)?;
            c.journal(super::journal::Revocation::RoleChanged {
                user_id: id,
                email: before.email.clone(),
                role: role.as_str().to_string(),
            });
            changed.insert(
                "role".into(),
                serde_json::json!({"from": before.role.as_str(), "to": role.as_str()}),
            );
        }
        match edit.is_active {
            Some(false) if before.is_active => {
                users::set_active(c.tx, id, false)?;
                let revoked = super::accounts::end_everything(c, id)?;
                changed.insert("is_active".into(), false.into());
                changed.insert("keys_revoked".into(), revoked.into());
            }
            Some(true) if !before.is_active => {
                users::set_active(c.tx, id, true)?;
                changed.insert("is_active".into(), true.into());
            }
            _ => {}
        }
        if !changed.is_empty() {
            c.audit_in(
                org,
                "service_account.updated",
                "service_account",
                id,
                Some(serde_json::Value::Object(changed).to_string()),
            )?;
        }
        c.touch(Kind::User, id);
        Ok(users::get(c.tx, id)?)
    })
    .await
}

/// Deletes a service account: its keys are revoked at once, and it is gone from every list
/// (the row stays for the audit entries, keys and content that name it).
pub async fn delete(app: &AppState, actor: &Actor, org: Id, id: Id) -> Result<(), ApiError> {
    change(app, actor, move |c| {
        let before = find(c.tx, org, id)?;
        manageable(c.actor(), &before)?;
        service_accounts::mark_deleted(c.tx, id)?;
        let revoked = super::accounts::end_everything(c, id)?;
        let details = serde_json::json!({"name": &before.name, "keys_revoked": revoked});
        c.audit_in(
            org,
            "service_account.deleted",
            "service_account",
            id,
            Some(details.to_string()),
        )?;
        c.touch(Kind::User, id);
        Ok(())
    })
    .await
}

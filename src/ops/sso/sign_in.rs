//! Who a provider's sign-in gives. For an address an LDAP provider serves, the directory finds
//! the user (service account), checks the password (a bind as the user: never a local hash),
//! and says which groups they are in; an OpenID provider's ID token says the same (`oidc`).
//! Either way `admit` then finds the user by who they are at the provider (after the first
//! sign-in, never by address again), else by address, else makes them (`jit_provisioning`),
//! and gives them the role their groups map to. A directory login goes on as any other
//! (throttle, claribi's own TOTP, the session).

use rand::distributions::{Alphanumeric, DistString};

use super::ldap::{Directory, DirectoryError};
use super::Provider;
use crate::domain::{Email, Role, Secret};
use crate::error::ApiError;
use crate::ops::accounts::{self, UserChange};
use crate::ops::AppState;
use crate::ops::{change, Actor};
use crate::store::audit::Outcome;
use crate::store::feed::Kind;
use crate::store::sso::LdapSettings;
use crate::store::{sso as stored, users};

/// Why a directory sign-in did not give a user.
#[derive(Debug)]
pub enum Refusal {
    /// Unknown address or wrong password (`401`, like any login), with the audit's reason.
    Credentials(&'static str),
    /// Known and right, but no role here, or no account and no provisioning (`403
    /// sso_not_allowed`).
    NotAllowed(&'static str, String),
    /// The directory did not answer (`503`).
    Unavailable(DirectoryError),
    /// Our own side failed (the database): passed on as it is.
    Internal(ApiError),
}

/// Who a provider says signed in: the directory entry, or the OpenID provider's ID token.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Who they are at the provider: the entry's DN (lower case), or the token's `sub`.
    pub subject: String,
    pub email: Email,
    pub name: String,
    pub groups: Vec<String>,
    /// The provider says the account is disabled.
    pub disabled: bool,
}

/// Whether `password` is `user`'s in the directory `provider`: a bind as the entry their
/// address finds, which must be the entry they are linked to once they signed in there (as at
/// login: an address that moved to another entry does not bring that entry's password with
/// it). Nothing else: this is the re-check of a password inside a session, and roles wait for
/// the next sign-in or sync. `Credentials` when the entry is gone or another's, or the
/// password wrong.
pub async fn ldap_password(
    app: &AppState,
    provider: &Provider,
    user: &users::User,
    password: &Secret,
) -> Result<(), Refusal> {
    let email = Email::parse(&user.email).map_err(|_| {
        Refusal::Internal(ApiError::Internal(format!(
            "user {} has an invalid address",
            user.id
        )))
    })?;
    let (directory, _) = open_directory(app, provider)?;
    let person = match directory.find(email.as_str(), false).await {
        Ok(Some(person)) => person,
        Ok(None) => return Err(Refusal::Credentials("unknown_email")),
        Err(e) => return Err(Refusal::Unavailable(e)),
    };
    let (provider_id, user_id) = (provider.id, user.id);
    let linked = app
        .store
        .read(move |db| stored::subject_of(db, provider_id, user_id))
        .await
        .map_err(|e| Refusal::Internal(e.into()))?;
    if linked.is_some_and(|subject| subject != person.dn.to_lowercase()) {
        return Err(Refusal::Credentials("linked_to_another_entry"));
    }
    match directory.check_password(&person.dn, password).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Refusal::Credentials("wrong_password")),
        Err(e) => Err(Refusal::Unavailable(e)),
    }
}

/// The directory of the LDAP provider `provider`, with its settings, its service account's
/// secret unsealed.
fn open_directory<'p>(
    app: &AppState,
    provider: &'p Provider,
) -> Result<(Directory<'p>, &'p LdapSettings), Refusal> {
    let Some(settings) = provider.ldap() else {
        return Err(Refusal::Internal(ApiError::Internal(format!(
            "provider {} is not a directory",
            provider.id
        ))));
    };
    let secret = provider
        .secret(app)
        .map_err(|e| Refusal::Unavailable(DirectoryError::Refused(e.to_string())))?;
    Ok((
        Directory::new(settings, secret, app.directory_tls.clone()),
        settings,
    ))
}

/// The user `email` signs in as with `password` through the directory `provider`.
pub async fn ldap(
    app: &AppState,
    provider: &Provider,
    email: &Email,
    password: &Secret,
) -> Result<users::User, Refusal> {
    let (directory, settings) = open_directory(app, provider)?;
    // The entry alone first: an address the directory knows costs the same as one it does
    // not until the password is right (the groups, which take more searches, come after).
    let person = match directory.find(email.as_str(), false).await {
        Ok(Some(person)) => person,
        Ok(None) => {
            // A bind as no one, so that an unknown address takes as long as a wrong password
            // (the directory's members are not told apart by timing).
            let nobody = format!("cn=claribi-no-such-user,{}", settings.user_base);
            let _ = directory.check_password(&nobody, password).await;
            return Err(Refusal::Credentials("unknown_email"));
        }
        Err(e) => return Err(Refusal::Unavailable(e)),
    };
    match directory.check_password(&person.dn, password).await {
        Ok(true) => {}
        Ok(false) => return Err(Refusal::Credentials("wrong_password")),
        Err(e) => return Err(Refusal::Unavailable(e)),
    }
    let person = match directory.find(email.as_str(), true).await {
        Ok(Some(found)) if found.dn == person.dn => found,
        // Gone or changed in between: as if the password had been wrong.
        Ok(_) => return Err(Refusal::Credentials("wrong_password")),
        Err(e) => return Err(Refusal::Unavailable(e)),
    };
    let who = Identity {
        subject: person.dn.to_lowercase(),
        email: email.clone(),
        name: person.name,
        groups: person.groups,
        disabled: person.disabled,
    };
    admit(app, provider, who, Actor::System("ldap sign-in")).await
}

/// The user `who` is here, once `provider` has vouched for them: found by who they are at the
/// provider (after the first sign-in, never by address again), else by address (one the
/// provider serves), else made (`jit_provisioning`); given the role their groups map to, or
/// refused (and an existing user deactivated) when they map to none.
pub async fn admit(
    app: &AppState,
    provider: &Provider,
    who: Identity,
    actor: Actor,
) -> Result<users::User, Refusal> {
    let Identity {
        subject,
        email,
        name,
        groups,
        disabled,
    } = who;
    let internal = |e: ApiError| Refusal::Internal(e);
    let lookup = subject.clone();
    let (provider_id, org) = (provider.id, provider.organization_id);
    let by_email = email.clone();
    let (linked, existing) = app
        .store
        .read(move |db| {
            let linked = match stored::user_of(db, provider_id, &lookup)? {
                Some(id) => Some(users::get(db, id)?),
                None => None,
            };
            Ok((linked, users::find_by_email(db, &by_email)?))
        })
        .await
        .map_err(|e| internal(e.into()))?;
    // After the first sign-in a user is found by who they are at the provider, never by
    // address again: an address now on another entry does not take the account over, and an
    // address outside the provider's domains is not the provider's to vouch for.
    if linked.is_none() && !provider.serves(&email) {
        return Err(Refusal::NotAllowed(
            "domain_not_served",
            "your address is not in a domain this provider serves; ask your administrator".into(),
        ));
    }
    if linked.is_none() {
        if let Some(user) = &existing {
            let (id, user_id) = (provider_id, user.id);
            let theirs = app
                .store
                .read(move |db| stored::subject_of(db, id, user_id))
                .await
                .map_err(|e| internal(e.into()))?;
            if theirs.is_some_and(|theirs| theirs != subject) {
                return Err(Refusal::NotAllowed(
                    "linked_to_another_entry",
                    "this account is another directory entry's; ask your administrator".into(),
                ));
            }
        }
    }
    let user = linked.or(existing);
    if let Some(user) = &user {
        if user.role == Role::Owner {
            // The owner is never a provider's, however the directory names them.
            return Err(Refusal::NotAllowed(
                "owner",
                "the organization's owner signs in with their own password".into(),
            ));
        }
        if user.organization_id != org {
            return Err(Refusal::NotAllowed(
                "another_organization",
                "this account belongs to another organization".into(),
            ));
        }
        if !user.is_active {
            return Err(Refusal::Credentials("inactive"));
        }
    }
    let role = match (!disabled).then(|| provider.role_for(&groups)).flatten() {
        Some(role) => role,
        None => {
            // The directory no longer gives them a place here: nor do we.
            if let Some(user) = user.filter(|u| u.role != Role::Owner) {
                let wanted = UserChange {
                    is_active: Some(false),
                    ..UserChange::default()
                };
                accounts::update_user(app, &actor, user.id, wanted)
                    .await
                    .map_err(internal)?;
            }
            return Err(Refusal::NotAllowed(
                "no_role",
                "your provider puts you in no group that has a role here; ask your administrator"
                    .into(),
            ));
        }
    };
    let user = match user {
        Some(user) => user,
        None if provider.jit_provisioning => provision(app, provider, &actor, &email, &name, role)
            .await
            .map_err(internal)?,
        None => {
            return Err(Refusal::NotAllowed(
                "not_provisioned",
                "you have no account here yet; ask your administrator to add you".into(),
            ))
        }
    };
    let user_id = user.id;
    change(app, &actor, move |c| {
        if stored::user_of(c.tx, provider_id, &subject)? != Some(user_id) {
            stored::link(c.tx, provider_id, &subject, user_id)?;
        }
        Ok(())
    })
    .await
    .map_err(internal)?;
    if user.role != role && user.role != Role::Owner {
        let wanted = UserChange {
            role: Some(role),
            ..UserChange::default()
        };
        return accounts::update_user(app, &actor, user.id, wanted)
            .await
            .map_err(internal);
    }
    Ok(user)
}

/// A first sign-in with `jit_provisioning`: the user, made in the provider's organization with
/// a random password nobody knows (the provider checks theirs), audited with the provider.
async fn provision(
    app: &AppState,
    provider: &Provider,
    actor: &Actor,
    email: &Email,
    name: &str,
    role: Role,
) -> Result<users::User, ApiError> {
    let unusable = Secret::new(Alphanumeric.sample_string(&mut rand::rngs::OsRng, 40));
    let hash = app.hasher.hash(unusable).await.map_err(accounts::busy)?;
    let (org, provider_id, email) = (provider.organization_id, provider.id, email.clone());
    let name: String = name.chars().take(100).collect();
    let name = if name.trim().is_empty() {
        email.as_str().split('@').next().unwrap_or("").to_string()
    } else {
        name
    };
    change(app, actor, move |c| {
        let id = users::create(
            c.tx,
            &users::NewUser {
                organization_id: org,
                email: &email,
                name: &name,
                role,
                password_hash: &hash,
                password_set_by_other: false,
                password_temporary: false,
            },
        )?;
        let mut entry = c.actor().entry("user.created", Outcome::Success);
        entry.organization_id = Some(org);
        entry.target_type = Some("user");
        entry.target_id = Some(id);
        entry.details = serde_json::json!({
            "email": email.as_str(),
            "role": role.as_str(),
            "via": provider_id,
        })
        .to_string();
        c.record(&entry)?;
        c.touch(Kind::User, id);
        Ok(users::get(c.tx, id)?)
    })
    .await
}

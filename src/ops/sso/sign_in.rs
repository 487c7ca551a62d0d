//! A password sign-in for an address an LDAP provider serves: the directory finds the user
//! (service account), checks the password (a bind as the user: never a local hash), and says
//! which groups, hence which role, they have. The user is then found by who they are in the
//! directory (after the first sign-in, never by address again), else by address, else made
//! (`jit_provisioning`), and given that role; the login goes on as any other (throttle,
//! claribi's own TOTP, the session).

use rand::distributions::{Alphanumeric, DistString};

use super::ldap::{Directory, DirectoryError, Person};
use super::Provider;
use crate::app::AppState;
use crate::domain::{Email, Role, Secret};
use crate::error::ApiError;
use crate::ops::accounts::{self, UserChange};
use crate::ops::{change, Actor};
use crate::store::audit::Outcome;
use crate::store::feed::Kind;
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

const ACTOR: Actor = Actor::System("ldap sign-in");

/// The user `email` signs in as with `password` through `provider`.
pub async fn ldap(
    app: &AppState,
    provider: &Provider,
    email: &Email,
    password: &Secret,
) -> Result<users::User, Refusal> {
    let secret = provider
        .secret(app)
        .map_err(|e| Refusal::Unavailable(DirectoryError::Refused(e.to_string())))?;
    let directory = Directory::new(&provider.ldap, secret, app.directory_tls.clone());
    let person = match directory.find(email.as_str()).await {
        Ok(Some(person)) => person,
        Ok(None) => {
            // A bind as no one, so that an unknown address takes as long as a wrong password
            // (the directory's members are not told apart by timing).
            let nobody = format!("cn=claribi-no-such-user,{}", provider.ldap.user_base);
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
    let internal = |e: ApiError| Refusal::Internal(e);
    let subject = person.dn.to_lowercase();
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
    // After the first sign-in a user is found by who they are in the directory, never by
    // address again: an address now on another entry does not take the account over.
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
    let role = match (!person.disabled)
        .then(|| provider.role_for(&person.groups))
        .flatten()
    {
        Some(role) => role,
        None => {
            // The directory no longer gives them a place here: nor do we.
            if let Some(user) = user.filter(|u| u.role != Role::Owner) {
                let wanted = UserChange {
                    is_active: Some(false),
                    ..UserChange::default()
                };
                accounts::update_user(app, &ACTOR, user.id, wanted)
                    .await
                    .map_err(internal)?;
            }
            return Err(Refusal::NotAllowed(
                "no_role",
                "the directory puts you in no group that has a role here; ask your administrator"
                    .into(),
            ));
        }
    };
    let user = match user {
        Some(user) => user,
        None if provider.jit_provisioning => provision(app, provider, email, &person, role)
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
    change(app, &ACTOR, move |c| {
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
        return accounts::update_user(app, &ACTOR, user.id, wanted)
            .await
            .map_err(internal);
    }
    Ok(user)
}

/// A first sign-in with `jit_provisioning`: the user, made in the provider's organization with
/// a random password nobody knows (the directory checks theirs), audited with the provider.
async fn provision(
    app: &AppState,
    provider: &Provider,
    email: &Email,
    person: &Person,
    role: Role,
) -> Result<users::User, ApiError> {
    let unusable = Secret::new(Alphanumeric.sample_string(&mut rand::rngs::OsRng, 40));
    let hash = app.hasher.hash(unusable).await.map_err(accounts::busy)?;
    let (org, provider_id, email) = (provider.organization_id, provider.id, email.clone());
    let name: String = person.name.chars().take(100).collect();
    change(app, &ACTOR, move |c| {
        let id = users::create(
            c.tx,
            &users::NewUser {
                organization_id: org,
                email: &email,
                name: &name,
                role,
                password_hash: &hash,
                password_set_by_other: false,
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

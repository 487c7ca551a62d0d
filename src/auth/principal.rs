//! `Principal`: who is calling, however they authenticated. `Authorized`: a principal that
//! passed a route's guard; only `authorize` builds one, so a handler that takes it cannot run
//! without the check.

use std::sync::Arc;

use super::permission::{Permission, Reach};
use super::rate::RateCounters;
use crate::domain::{Id, Role};
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Jwt,
    ApiKey,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Jwt => "jwt",
            Method::ApiKey => "api_key",
        }
    }
}

/// The API key a request came with.
#[derive(Debug, Clone)]
pub struct KeyRef {
    pub id: Id,
    pub name: Arc<str>,
    pub prefix: Arc<str>,
    pub created_at: crate::domain::UnixTime,
    pub expires_at: Option<crate::domain::UnixTime>,
    /// `None`: the creator's full permissions.
    pub scopes: Option<Arc<[Permission]>>,
    /// The key's usage counters (scope uses are counted once a route's guard passed).
    pub counters: Arc<super::live::KeyCounters>,
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Id,
    pub organization_id: Id,
    /// The user's role now, not when the credential was issued.
    pub role: Role,
    pub method: Method,
    /// The session of a JWT.
    pub session_id: Option<Id>,
    pub key: Option<KeyRef>,
    /// The request counters of the key, or of the user for a JWT.
    pub rates: Arc<RateCounters>,
    /// A session of a user whose password is temporary: it opens only the guards that admit
    /// it (`me` and the password change).
    pub password_change_required: bool,
    /// A session opened while the organization required MFA its user did not have, who has
    /// none yet: it opens only MFA enrolment and the guards that admit every session.
    pub mfa_enrollment_required: bool,
}

impl Principal {
    /// What this caller may do: the role's permissions, cut to the key's scopes.
    pub fn reach(&self, permission: Permission) -> Option<Reach> {
        let reach = permission.reach(self.role)?;
        match &self.key {
            Some(KeyRef {
                scopes: Some(scopes),
                ..
            }) if !scopes.contains(&permission) => None,
            _ => Some(reach),
        }
    }

    /// The effective permissions, sorted by name.
    pub fn permissions(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = super::permission::ALL
            .into_iter()
            .filter(|p| self.reach(*p).is_some())
            .map(Permission::as_str)
            .collect();
        names.sort_unstable();
        names
    }

    pub fn key_prefix(&self) -> Option<String> {
        self.key.as_ref().map(|k| k.prefix.to_string())
    }
}

/// What a route demands of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// No credentials.
    Public,
    /// Any valid credential, JWT or key, scoped or not.
    Any,
    /// `Any`, a restricted session included (`me`): one whose password is temporary, or whose
    /// user must set up MFA first.
    AnyEvenRestricted,
    /// A JWT session: key, MFA, password and session management.
    Interactive,
    /// `Interactive`, a restricted session included (logout).
    InteractiveEvenRestricted,
    /// `Interactive`, a session whose password is temporary included (the password change).
    InteractiveEvenTemporary,
    /// `Interactive`, a session whose user must set up MFA first included (MFA enrolment).
    MfaEnrolment,
    /// A JWT session of an administrator (or the owner).
    InteractiveAdmin,
    /// The role must grant it and a scoped key must carry it.
    Permission(Permission),
}

#[derive(Debug, Clone)]
pub struct Authorized {
    principal: Principal,
    reach: Reach,
}

impl Authorized {
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// May the caller change a resource created by `created_by`?
    pub fn may_change(&self, created_by: Option<Id>) -> bool {
        self.reach == Reach::All || created_by == Some(self.principal.user_id)
    }
}

/// The one authorization step of every protected route.
pub fn authorize(principal: Principal, guard: Guard) -> Result<Authorized, ApiError> {
    let everyone = matches!(
        guard,
        Guard::AnyEvenRestricted | Guard::InteractiveEvenRestricted
    );
    // The password first: enrolling MFA asks for it.
    if principal.password_change_required && !(everyone || guard == Guard::InteractiveEvenTemporary)
    {
        return Err(ApiError::PasswordChangeRequired);
    }
    if principal.mfa_enrollment_required
        && !principal.password_change_required
        && !(everyone || guard == Guard::MfaEnrolment)
    {
        return Err(ApiError::MfaEnrollmentRequired);
    }
    let reach = match guard {
        Guard::Public | Guard::Any | Guard::AnyEvenRestricted => Reach::All,
        Guard::Interactive
        | Guard::InteractiveEvenRestricted
        | Guard::InteractiveEvenTemporary
        | Guard::MfaEnrolment
        | Guard::InteractiveAdmin => {
            if principal.method != Method::Jwt {
                return Err(ApiError::InteractiveSessionRequired);
            }
            if guard == Guard::InteractiveAdmin && !principal.role.is_admin() {
                return Err(ApiError::denied("only administrators may do this"));
            }
            Reach::All
        }
        Guard::Permission(permission) => {
            if let Some(KeyRef {
                scopes: Some(scopes),
                ..
            }) = &principal.key
            {
                if !scopes.contains(&permission) {
                    return Err(ApiError::InsufficientScope(
                        permission.is_scope().then(|| permission.as_str()),
                    ));
                }
            }
            let reach = permission.reach(principal.role).ok_or_else(|| {
                ApiError::denied(format!(
                    "your role ({}) does not allow this ({permission})",
                    principal.role
                ))
            })?;
            // A scoped key's use of one of its scopes, for the advice on unused scopes.
            if let Some(KeyRef {
                scopes: Some(_),
                counters,
                ..
            }) = &principal.key
            {
                counters.record_scope(permission, crate::domain::now());
            }
            reach
        }
    };
    Ok(Authorized { principal, reach })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    fn principal(role: Role, scopes: Option<Vec<Permission>>) -> Principal {
        Principal {
            user_id: 1,
            organization_id: 1,
            role,
            method: if scopes.is_some() {
                Method::ApiKey
            } else {
                Method::Jwt
            },
            session_id: None,
            key: scopes.map(|s| KeyRef {
                id: 1,
                name: "ci".into(),
                prefix: "claribi_key_abcdefgh".into(),
                created_at: 0,
                expires_at: None,
                scopes: Some(s.into()),
                counters: Arc::default(),
            }),
            rates: Arc::default(),
            password_change_required: false,
            mfa_enrollment_required: false,
        }
    }

    #[test]
    fn scopes_cut_the_role_and_name_the_missing_scope() {
        let key = principal(Role::Administrator, Some(vec![ReportsRead]));
        assert!(authorize(key.clone(), Guard::Permission(ReportsRead)).is_ok());
        match authorize(key.clone(), Guard::Permission(ReportsDelete)) {
            Err(ApiError::InsufficientScope(Some("reports:delete"))) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            authorize(key.clone(), Guard::Permission(UsersManage)),
            Err(ApiError::InsufficientScope(None))
        ));
        assert!(matches!(
            authorize(key, Guard::Interactive),
            Err(ApiError::InteractiveSessionRequired)
        ));
    }

    #[test]
    fn the_role_limits_a_scope_and_own_is_own() {
        let viewer_key = principal(Role::Viewer, Some(vec![ReportsGenerate]));
        assert!(matches!(
            authorize(viewer_key, Guard::Permission(ReportsGenerate)),
            Err(ApiError::PermissionDenied(_))
        ));
        let analyst = authorize(
            principal(Role::Analyst, None),
            Guard::Permission(DashboardsUpdate),
        )
        .unwrap();
        assert!(analyst.may_change(Some(1)) && !analyst.may_change(Some(2)));
        let admin = authorize(
            principal(Role::Administrator, None),
            Guard::Permission(DashboardsUpdate),
        )
        .unwrap();
        assert!(admin.may_change(Some(2)));
    }

    #[test]
    fn a_restricted_session_opens_only_what_its_restriction_admits() {
        let temporary = Principal {
            password_change_required: true,
            ..principal(Role::Administrator, None)
        };
        let enrolling = Principal {
            mfa_enrollment_required: true,
            ..principal(Role::Administrator, None)
        };
        let both = Principal {
            mfa_enrollment_required: true,
            ..temporary.clone()
        };
        for p in [&temporary, &enrolling, &both] {
            assert!(authorize(p.clone(), Guard::AnyEvenRestricted).is_ok());
            assert!(authorize(p.clone(), Guard::InteractiveEvenRestricted).is_ok());
            assert!(authorize(p.clone(), Guard::Permission(ReportsRead)).is_err());
            assert!(authorize(p.clone(), Guard::Interactive).is_err());
        }
        assert!(authorize(temporary.clone(), Guard::InteractiveEvenTemporary).is_ok());
        assert!(matches!(
            authorize(temporary, Guard::MfaEnrolment),
            Err(ApiError::PasswordChangeRequired)
        ));
        assert!(authorize(enrolling.clone(), Guard::MfaEnrolment).is_ok());
        assert!(matches!(
            authorize(enrolling, Guard::InteractiveEvenTemporary),
            Err(ApiError::MfaEnrollmentRequired)
        ));
        // The password first, then MFA: never a session that can do neither.
        assert!(authorize(both.clone(), Guard::InteractiveEvenTemporary).is_ok());
        assert!(matches!(
            authorize(both, Guard::Permission(ReportsRead)),
            Err(ApiError::PasswordChangeRequired)
        ));
    }

    #[test]
    fn permissions_are_sorted_and_cut() {
        let p = principal(Role::Owner, Some(vec![UsageRead, ReportsRead]));
        assert_eq!(p.permissions(), vec!["reports:read", "usage:read"]);
        let all = principal(Role::Viewer, None).permissions();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert!(all.contains(&"reports:read") && !all.contains(&"reports:generate"));
    }
}

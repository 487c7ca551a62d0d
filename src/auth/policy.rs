//! An organization's security policy (contract 10.4) and what breaks it: which keys may be
//! made, who must have MFA, how long a session may live. Pure rules over plain values; the
//! operations read the policy in the transaction that applies it.

use super::permission::{Permission, ALL};
use crate::domain::Role;

/// Who must have MFA before a session opens more than MFA enrolment and `me`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequireMfa {
    #[default]
    None,
    Administrators,
    Everyone,
}

impl RequireMfa {
    pub fn as_str(self) -> &'static str {
        match self {
            RequireMfa::None => "none",
            RequireMfa::Administrators => "administrators",
            RequireMfa::Everyone => "everyone",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            RequireMfa::None,
            RequireMfa::Administrators,
            RequireMfa::Everyone,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// The lifetimes a key may be limited to, as keys are made (`expires_in_days`).
pub const KEY_LIFETIMES: [i64; 3] = [30, 90, 365];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityPolicy {
    pub require_mfa: RequireMfa,
    /// Every key must expire within this many days (30, 90 or 365).
    pub key_max_lifetime_days: Option<i64>,
    pub allow_never_expiring_keys: bool,
    /// A key that may write must name the addresses it may be used from.
    pub require_ip_allowlist_for_write_scopes: bool,
    /// Caps every new session's refresh lifetime, in seconds.
    pub session_max_lifetime: Option<i64>,
}

impl Default for SecurityPolicy {
    /// Today's behaviour: nothing required.
    fn default() -> Self {
        SecurityPolicy {
            require_mfa: RequireMfa::None,
            key_max_lifetime_days: None,
            allow_never_expiring_keys: true,
            require_ip_allowlist_for_write_scopes: false,
            session_max_lifetime: None,
        }
    }
}

/// A rule a key or a user breaks: the policy's field that states it, the request's field that
/// breaks it, and a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub rule: &'static str,
    pub field: &'static str,
    pub message: String,
}

/// What the policy looks at in a key: how long it lives, what it may do, where from.
#[derive(Debug, Clone, Copy)]
pub struct KeyTerms<'a> {
    pub expires_in_days: Option<i64>,
    /// `None`: the owner's whole role.
    pub scopes: Option<&'a [Permission]>,
    /// The role of whoever the key acts as.
    pub role: Role,
    pub allowlisted: bool,
}

/// Does the permission change anything (every permission but the `...:read` ones)?
pub fn writes(permission: Permission) -> bool {
    !permission.as_str().ends_with(":read")
}

impl KeyTerms<'_> {
    /// May the key change anything: a write scope, or no scopes and a role that writes.
    fn may_write(&self) -> bool {
        match self.scopes {
            Some(scopes) => scopes
                .iter()
                .any(|p| writes(*p) && p.reach(self.role).is_some()),
            None => ALL
                .into_iter()
                .any(|p| writes(p) && p.reach(self.role).is_some()),
        }
    }
}

impl SecurityPolicy {
    /// Must a user of this role have MFA?
    pub fn requires_mfa(&self, role: Role) -> bool {
        match self.require_mfa {
            RequireMfa::None => false,
            RequireMfa::Administrators => role.is_admin(),
            RequireMfa::Everyone => true,
        }
    }

    /// The first rule a key with these terms breaks, if any.
    pub fn key_breach(&self, key: &KeyTerms<'_>) -> Option<Breach> {
        match (key.expires_in_days, self.key_max_lifetime_days) {
            (None, Some(max)) => {
                return Some(Breach {
                    rule: "key_max_lifetime_days",
                    field: "expires_in_days",
                    message: format!(
                        "the organization's policy requires every key to expire within {max} days"
                    ),
                })
            }
            (Some(days), Some(max)) if days > max => {
                return Some(Breach {
                    rule: "key_max_lifetime_days",
                    field: "expires_in_days",
                    message: format!(
                        "the organization's policy allows keys of at most {max} days, not {days}"
                    ),
                })
            }
            (None, None) if !self.allow_never_expiring_keys => {
                return Some(Breach {
                    rule: "allow_never_expiring_keys",
                    field: "expires_in_days",
                    message: "the organization's policy does not allow keys that never expire"
                        .into(),
                })
            }
            _ => {}
        }
        if self.require_ip_allowlist_for_write_scopes && !key.allowlisted && key.may_write() {
            return Some(Breach {
                rule: "require_ip_allowlist_for_write_scopes",
                field: "allowed_ips",
                message: "the organization's policy requires a key that may write to name the \
                          addresses it is used from"
                    .into(),
            });
        }
        None
    }

    /// When a session opened at `now` ends: `refresh_ttl` later, or sooner under the policy.
    pub fn session_end(&self, now: i64, refresh_ttl: i64) -> i64 {
        let ttl = self
            .session_max_lifetime
            .map_or(refresh_ttl, |max| max.min(refresh_ttl));
        now.saturating_add(ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    fn key(days: Option<i64>, scopes: Option<&[Permission]>, allowlisted: bool) -> KeyTerms<'_> {
        KeyTerms {
            expires_in_days: days,
            scopes,
            role: Role::Analyst,
            allowlisted,
        }
    }

    #[test]
    fn the_defaults_allow_every_key() {
        let policy = SecurityPolicy::default();
        assert_eq!(policy.key_breach(&key(None, None, false)), None);
        assert!(!policy.requires_mfa(Role::Owner));
    }

    #[test]
    fn lifetimes_are_capped_and_never_expiring_keys_refused() {
        let policy = SecurityPolicy {
            key_max_lifetime_days: Some(90),
            ..SecurityPolicy::default()
        };
        assert_eq!(policy.key_breach(&key(Some(90), None, false)), None);
        let too_long = policy.key_breach(&key(Some(365), None, false)).unwrap();
        assert_eq!(
            (too_long.rule, too_long.field),
            ("key_max_lifetime_days", "expires_in_days")
        );
        assert_eq!(
            policy.key_breach(&key(None, None, false)).unwrap().rule,
            "key_max_lifetime_days"
        );
        let no_never = SecurityPolicy {
            allow_never_expiring_keys: false,
            ..SecurityPolicy::default()
        };
        assert_eq!(
            no_never.key_breach(&key(None, None, false)).unwrap().rule,
            "allow_never_expiring_keys"
        );
        assert_eq!(no_never.key_breach(&key(Some(365), None, false)), None);
    }

    #[test]
    fn a_key_that_may_write_needs_an_allowlist_and_a_reading_one_does_not() {
        let policy = SecurityPolicy {
            require_ip_allowlist_for_write_scopes: true,
            ..SecurityPolicy::default()
        };
        let read: &[Permission] = &[ReportsRead, DashboardsRead];
        let write: &[Permission] = &[ReportsRead, ReportsGenerate];
        assert_eq!(policy.key_breach(&key(None, Some(read), false)), None);
        let breach = policy.key_breach(&key(None, Some(write), false)).unwrap();
        assert_eq!(breach.field, "allowed_ips");
        assert_eq!(policy.key_breach(&key(None, Some(write), true)), None);
        // Unscoped: the role decides; a viewer's whole role only reads.
        assert!(policy.key_breach(&key(None, None, false)).is_some());
        let viewer = KeyTerms {
            role: Role::Viewer,
            ..key(None, None, false)
        };
        assert_eq!(policy.key_breach(&viewer), None);
    }

    #[test]
    fn mfa_covers_the_roles_it_names_and_sessions_are_capped() {
        let admins = SecurityPolicy {
            require_mfa: RequireMfa::Administrators,
            session_max_lifetime: Some(3_600),
            ..SecurityPolicy::default()
        };
        assert!(admins.requires_mfa(Role::Owner) && admins.requires_mfa(Role::Administrator));
        assert!(!admins.requires_mfa(Role::Analyst));
        assert_eq!(admins.session_end(1_000, 86_400), 4_600);
        assert_eq!(admins.session_end(1_000, 60), 1_060);
        assert_eq!(RequireMfa::parse("everyone"), Some(RequireMfa::Everyone));
        assert_eq!(RequireMfa::parse("all"), None);
    }
}

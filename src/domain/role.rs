//! `Role`: the organization roles, highest first.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Member,
    Analyst,
    Administrator,
    Owner,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Administrator,
        Role::Analyst,
        Role::Member,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Administrator => "administrator",
            Role::Analyst => "analyst",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Administrators and the owner manage users, keys and the audit log.
    pub fn is_admin(self) -> bool {
        self >= Role::Administrator
    }
}

impl FromStr for Role {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or("must be one of owner, administrator, analyst, member, viewer")
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_is_highest_first() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!(Role::Owner > Role::Administrator && Role::Member > Role::Viewer);
        assert!("Owner".parse::<Role>().is_err());
        assert!(Role::Administrator.is_admin() && !Role::Analyst.is_admin());
    }
}

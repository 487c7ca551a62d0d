//! The role matrix and the scopes, as data: what each role may do, which permissions an API
//! key can be scoped to. Route guards and handlers read these tables; nothing else decides.

use std::fmt;
use std::str::FromStr;

use crate::domain::Role;

/// Everything a caller may be allowed to do. The first thirteen are also API-key scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    ReportsRead,
    ReportsGenerate,
    ReportsDelete,
    ReportsShare,
    DashboardsRead,
    DashboardsCreate,
    DashboardsUpdate,
    DashboardsDelete,
    DashboardsRefresh,
    DashboardsShare,
    DataSourcesRead,
    UsageRead,
    GoalsRead,
    // Not scopes: open to JWT sessions and unscoped keys, by role.
    GoalsWrite,
    DataSourcesWrite,
    UsersManage,
    AuditRead,
    OrganizationRead,
    OrganizationManage,
}

use Permission::*;

/// How far a role's permission reaches: every resource of the organization, or only those
/// the caller created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    All,
    Own,
}

/// Every permission; the first thirteen are the scopes, in the order of the contract's table.
pub const ALL: [Permission; 19] = [
    ReportsRead,
    ReportsGenerate,
    ReportsDelete,
    ReportsShare,
    DashboardsRead,
    DashboardsCreate,
    DashboardsUpdate,
    DashboardsDelete,
    DashboardsRefresh,
    DashboardsShare,
    DataSourcesRead,
    UsageRead,
    GoalsRead,
    GoalsWrite,
    DataSourcesWrite,
    UsersManage,
    AuditRead,
    OrganizationRead,
    OrganizationManage,
];

/// The scopes: the first thirteen permissions.
pub const SCOPES: &[Permission] = ALL.split_at(13).0;

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportsRead => "reports:read",
            ReportsGenerate => "reports:generate",
            ReportsDelete => "reports:delete",
            ReportsShare => "reports:share",
            DashboardsRead => "dashboards:read",
            DashboardsCreate => "dashboards:create",
            DashboardsUpdate => "dashboards:update",
            DashboardsDelete => "dashboards:delete",
            DashboardsRefresh => "dashboards:refresh",
            DashboardsShare => "dashboards:share",
            DataSourcesRead => "data_sources:read",
            UsageRead => "usage:read",
            GoalsRead => "goals:read",
            GoalsWrite => "goals:write",
            DataSourcesWrite => "data_sources:write",
            UsersManage => "users:manage",
            AuditRead => "audit:read",
            OrganizationRead => "organization:read",
            OrganizationManage => "organization:manage",
        }
    }

    pub fn is_scope(self) -> bool {
        SCOPES.contains(&self)
    }

    /// The role matrix of the contract, section 2.
    pub fn reach(self, role: Role) -> Option<Reach> {
        use Role::*;
        let at_least = |min: Role| (role >= min).then_some(Reach::All);
        match self {
            ReportsRead | DashboardsRead | DataSourcesRead | GoalsRead | UsageRead
            | OrganizationRead => Some(Reach::All),
            ReportsGenerate => at_least(Member),
            DashboardsCreate | DashboardsRefresh | ReportsShare | DashboardsShare | GoalsWrite => {
                at_least(Analyst)
            }
            DashboardsUpdate | DashboardsDelete | ReportsDelete => match role {
                Analyst => Some(Reach::Own),
                _ => at_least(Administrator),
            },
            DataSourcesWrite | UsersManage | AuditRead => at_least(Administrator),
            OrganizationManage => at_least(Owner),
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a scope name; only the thirteen scopes parse.
impl FromStr for Permission {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SCOPES.iter().copied().find(|p| p.as_str() == s).ok_or(())
    }
}

/// The scopes of a stored key (space-separated names); names this version does not know are
/// skipped, so a key never gains a permission from a name it cannot read.
pub fn parse_scopes(text: &str) -> Vec<Permission> {
    text.split_whitespace()
        .filter_map(|s| s.parse::<Permission>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_of_the_contract() {
        use Role::*;
        let can = |p: Permission, r: Role| p.reach(r);
        for role in Role::ALL {
            assert_eq!(can(ReportsRead, role), Some(Reach::All));
            assert_eq!(can(OrganizationRead, role), Some(Reach::All));
        }
        assert_eq!(can(ReportsGenerate, Viewer), None);
        assert_eq!(can(ReportsGenerate, Member), Some(Reach::All));
        assert_eq!(can(DashboardsCreate, Member), None);
        assert_eq!(can(DashboardsCreate, Analyst), Some(Reach::All));
        assert_eq!(can(DashboardsUpdate, Member), None);
        assert_eq!(can(DashboardsUpdate, Analyst), Some(Reach::Own));
        assert_eq!(can(ReportsDelete, Administrator), Some(Reach::All));
        assert_eq!(can(DataSourcesWrite, Analyst), None);
        assert_eq!(can(UsersManage, Administrator), Some(Reach::All));
        assert_eq!(can(OrganizationManage, Administrator), None);
        assert_eq!(can(OrganizationManage, Owner), Some(Reach::All));
    }

    #[test]
    fn only_the_thirteen_scopes_parse() {
        for &scope in SCOPES {
            assert_eq!(scope.as_str().parse::<Permission>(), Ok(scope));
        }
        assert!("users:manage".parse::<Permission>().is_err());
        assert!("reports:write".parse::<Permission>().is_err());
        let names: Vec<&str> = SCOPES.iter().map(|p| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "reports:read",
                "reports:generate",
                "reports:delete",
                "reports:share",
                "dashboards:read",
                "dashboards:create",
                "dashboards:update",
                "dashboards:delete",
                "dashboards:refresh",
                "dashboards:share",
                "data_sources:read",
                "usage:read",
                "goals:read",
            ],
            "the contract's scope table"
        );
    }
}

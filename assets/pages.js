// Every page of the console, once: the main navigation, the Settings sub-navigation and the
// Settings indexes are drawn from these lists, and a test of the server checks that it serves
// each path named here.

/** The main navigation, in its order. */
export const MAIN = [
  { href: "/", label: "Overview" },
  { href: "/reports", label: "Reports" },
  { href: "/dashboards", label: "Dashboards" },
  { href: "/goals", label: "Goals" },
  { href: "/data-sources", label: "Data sources" },
  { href: "/usage", label: "Usage" },
  { href: "/settings", label: "Settings" },
  { href: "/docs/api", label: "API reference" },
];

/**
 * The Settings area, in its order. `label`: the page's link in the sub-navigation (none: not
 * there); `index`: the index page that lists it, with `title` and `what`; `admin`: shown to
 * administrators and the owner only.
 */
export const SETTINGS = [
  { href: "/settings/developer", index: "/settings", title: "Developer", what: "API keys for integrations" },
  {
    href: "/settings/developer/api-keys", label: "Developer › API keys",
    index: "/settings/developer", title: "API Keys", what: "keys for integrations: generate, rotate, revoke",
  },
  {
    href: "/settings/security", label: "Security",
    index: "/settings", title: "Security", what: "two-factor authentication, password, sessions",
  },
  {
    href: "/settings/security/sso", label: "Security › SSO providers", admin: true,
    index: "/settings", title: "SSO providers", what: "sign-in through your identity provider or directory",
  },
  {
    href: "/settings/security/policy", label: "Security › Policy", admin: true,
    index: "/settings", title: "Security policy", what: "required two-factor, key lifetimes, what breaks them",
  },
  {
    href: "/settings/service-accounts", label: "Service accounts", admin: true,
    index: "/settings", title: "Service accounts", what: "identities for machines, with their keys",
  },
  {
    href: "/admin/users", label: "Users", admin: true,
    index: "/settings", title: "Users", what: "people, roles, deactivation",
  },
  {
    href: "/admin/audit", label: "Audit log", admin: true,
    index: "/settings", title: "Audit log", what: "who did what, and when",
  },
  {
    href: "/settings/organization", label: "Organization", admin: true,
    index: "/settings", title: "Organization", what: "name and ownership",
  },
];

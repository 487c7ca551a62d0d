-- Schema version 14: sign-in through the site's directory or identity provider (contract
-- 10.2). A provider belongs to an organization; its kind's settings are JSON, its secret
-- (client_secret, bind_password) sealed with the data directory's key.
CREATE TABLE sso_providers (
    id               INTEGER PRIMARY KEY,
    organization_id  INTEGER NOT NULL REFERENCES organizations (id),
    name             TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('oidc', 'ldap')),
    enabled          INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    email_domains    TEXT    NOT NULL,
    role_mapping     TEXT    NOT NULL,
    default_role     TEXT,
    jit_provisioning INTEGER NOT NULL CHECK (jit_provisioning IN (0, 1)),
    enforce          INTEGER NOT NULL CHECK (enforce IN (0, 1)),
    settings         TEXT    NOT NULL,
    secret           TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    -- The next directory sync is due then (unix ms); a server takes it by moving it on.
    sync_due_ms      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sso_providers_by_organization ON sso_providers (organization_id, id);
-- Who a user is at a provider: the directory entry's DN, or the OpenID subject. After the
-- first sign-in a user is found by this, never by email again.
CREATE TABLE sso_identities (
    provider_id INTEGER NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    subject     TEXT    NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (provider_id, subject)
);
CREATE INDEX sso_identities_by_user ON sso_identities (user_id);

-- Schema version 17 (contract 10.4): service accounts and each organization's security policy.
--
-- A service account is a row of `users` marked `service_account`: an identity of its
-- organization with a role, whose keys act as it. It has no email (its `email` is a unique
-- name that is not an address, so no login or directory can ever match it), no password (its
-- hash is not a hash) and no session. Deleting one keeps the row, which audit entries, keys
-- and content refer to, and hides it.
ALTER TABLE users ADD COLUMN service_account BIGINT NOT NULL DEFAULT 0
    CHECK (service_account IN (0, 1));
ALTER TABLE users ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN created_by BIGINT REFERENCES users (id);
ALTER TABLE users ADD COLUMN deleted_at BIGINT;
CREATE INDEX users_service_accounts ON users (organization_id, id) WHERE service_account = 1;

-- An organization's security policy; no row: the defaults (nothing required, keys may never
-- expire).
CREATE TABLE security_policies (
    organization_id                        BIGINT  PRIMARY KEY REFERENCES organizations (id),
    require_mfa                            TEXT    NOT NULL DEFAULT 'none'
                                           CHECK (require_mfa IN ('none', 'administrators', 'everyone')),
    key_max_lifetime_days                  BIGINT  CHECK (key_max_lifetime_days IN (30, 90, 365)),
    allow_never_expiring_keys              BIGINT NOT NULL DEFAULT 1
                                           CHECK (allow_never_expiring_keys IN (0, 1)),
    require_ip_allowlist_for_write_scopes  BIGINT NOT NULL DEFAULT 0
                                           CHECK (require_ip_allowlist_for_write_scopes IN (0, 1)),
    -- seconds; NULL: auth.refresh_ttl alone
    session_max_lifetime                   BIGINT  CHECK (session_max_lifetime > 0)
);

-- A session opened while the policy required MFA its user did not have: until MFA is on, it
-- opens only MFA enrolment and `me`.
ALTER TABLE sessions ADD COLUMN mfa_enrollment_required BIGINT NOT NULL DEFAULT 0
    CHECK (mfa_enrollment_required IN (0, 1));

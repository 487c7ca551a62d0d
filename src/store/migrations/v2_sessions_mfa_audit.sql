-- Schema version 2: login sessions, MFA, password history, the audit log, and the epoch that
-- tells a running server that a CLI command changed users or sessions behind its back.

ALTER TABLE users ADD COLUMN mfa_enabled INTEGER NOT NULL DEFAULT 0 CHECK (mfa_enabled IN (0, 1));
-- base32 TOTP secret: pending after setup, active once mfa_enabled = 1
ALTER TABLE users ADD COLUMN mfa_secret TEXT;
-- the last accepted TOTP time step: a code of that step or an earlier one is a replay
ALTER TABLE users ADD COLUMN mfa_last_step INTEGER NOT NULL DEFAULT 0;

CREATE TABLE sessions (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    created_at    INTEGER NOT NULL,
    -- login + auth.refresh_ttl: no refresh extends a session past it
    expires_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    ip            TEXT,
    user_agent    TEXT,
    -- jti of the refresh token that may be used next (rotation); any other is a reuse
    refresh_jti   TEXT    NOT NULL,
    revoked_at    INTEGER
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE recovery_codes (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    -- SHA-256 of the normalised code, hex
    code_hash  TEXT    NOT NULL,
    used_at    INTEGER
);
CREATE INDEX recovery_codes_by_user ON recovery_codes (user_id);

CREATE TABLE password_history (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id),
    password_hash  TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX password_history_by_user ON password_history (user_id, id);

CREATE TABLE audit_log (
    id               INTEGER PRIMARY KEY,
    at               INTEGER NOT NULL,
    organization_id  INTEGER,
    action           TEXT    NOT NULL,
    outcome          TEXT    NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    user_id          INTEGER,
    api_key_prefix   TEXT,
    ip               TEXT,
    user_agent       TEXT,
    target_type      TEXT,
    target_id        INTEGER,
    -- JSON object; never a secret
    details          TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_organization ON audit_log (organization_id, id);

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('live_epoch', 0);

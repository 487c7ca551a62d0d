-- Schema version 20 (contract 10.3): passkeys. `mfa_enabled` now means "some second factor is
-- on" (TOTP or a passkey); `totp_enabled` says whether TOTP is one of them.
ALTER TABLE users ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;
UPDATE users SET totp_enabled = mfa_enabled;
-- The random user handle an authenticator stores with a discoverable passkey (a UUID), made
-- with the user's first passkey: it names no one outside this database.
ALTER TABLE users ADD COLUMN webauthn_handle TEXT;
CREATE UNIQUE INDEX users_by_webauthn_handle ON users (webauthn_handle);

-- A registered passkey: webauthn-rs's record of it (public key, signature counter) as JSON.
CREATE TABLE webauthn_credentials (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id),
    name           TEXT    NOT NULL,
    -- the authenticator's credential id, base64url: unique across every account
    credential_id  TEXT    NOT NULL UNIQUE,
    passkey        TEXT    NOT NULL,
    -- registered for sign-in without a password (discoverable, user verification required)
    passwordless   INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER
);
CREATE INDEX webauthn_credentials_by_user ON webauthn_credentials (user_id);

-- A ceremony begun and not finished: single-use (taken by a delete), 5 minutes at most.
CREATE TABLE webauthn_challenges (
    id            TEXT    PRIMARY KEY,
    -- the account it was begun for; NULL for a sign-in without a password
    user_id       INTEGER REFERENCES users (id),
    purpose       TEXT    NOT NULL CHECK (purpose IN ('register', 'login', 'passkey')),
    -- webauthn-rs's ceremony state, JSON
    state         TEXT    NOT NULL,
    passwordless  INTEGER NOT NULL DEFAULT 0,
    -- the address that began it: what one client may keep waiting is bounded
    client_ip     TEXT,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX webauthn_challenges_by_expiry ON webauthn_challenges (expires_at);
CREATE INDEX webauthn_challenges_by_purpose ON webauthn_challenges (purpose, expires_at);
CREATE INDEX webauthn_challenges_by_client ON webauthn_challenges (client_ip, purpose);
CREATE INDEX webauthn_challenges_by_user ON webauthn_challenges (user_id, purpose);

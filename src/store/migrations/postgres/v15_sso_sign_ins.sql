-- Schema version 15, as on SQLite: OpenID Connect sign-ins in flight (contract 10.2), each
-- single-use and bounded in time, where every server finds them.
CREATE TABLE sso_sign_ins (
    -- SHA-256 of the `state` sent to the provider (hex).
    state_hash   TEXT    PRIMARY KEY,
    provider_id  BIGINT  NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    -- SHA-256 of the browser's binding cookie (hex).
    browser_hash TEXT    NOT NULL,
    nonce        TEXT    NOT NULL,
    -- The PKCE code verifier.
    verifier     TEXT    NOT NULL,
    -- Where the provider sends the browser back (the token request repeats it).
    redirect_uri TEXT    NOT NULL,
    -- The address that started it (an IPv6 client by its /64): a bound per client.
    client       TEXT    NOT NULL,
    expires_ms   BIGINT  NOT NULL
);
CREATE INDEX sso_sign_ins_by_expiry ON sso_sign_ins (expires_ms);
CREATE INDEX sso_sign_ins_by_client ON sso_sign_ins (client);
-- One-time codes the callback hands the login page, traded once for a session by the
-- browser that signed in.
CREATE TABLE sso_codes (
    -- SHA-256 of the code (hex).
    code_hash    TEXT    PRIMARY KEY,
    -- SHA-256 of the browser's binding cookie (hex).
    browser_hash TEXT    NOT NULL,
    provider_id BIGINT  NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    user_id     BIGINT  NOT NULL REFERENCES users (id),
    expires_ms  BIGINT  NOT NULL
);
CREATE INDEX sso_codes_by_expiry ON sso_codes (expires_ms);

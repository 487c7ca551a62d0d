-- Schema version 3: API keys. Only a SHA-256 of each key is stored.

CREATE TABLE api_keys (
    id               INTEGER PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES users (id),
    organization_id  INTEGER NOT NULL REFERENCES organizations (id),
    name             TEXT    NOT NULL,
    description      TEXT    NOT NULL DEFAULT '',
    -- SHA-256 of the whole key, hex
    key_hash         TEXT    NOT NULL UNIQUE,
    -- claribi_key_ + the first 8 random characters
    prefix           TEXT    NOT NULL,
    -- space-separated scopes; NULL: the creator's full permissions
    scopes           TEXT,
    -- 30, 90, 365 or NULL (never): kept so that rotation keeps the same length
    expires_in_days  INTEGER,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER,
    revoked_at       INTEGER,
    revoked_by       INTEGER REFERENCES users (id),
    last_used_at     INTEGER,
    usage_count      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_by_user ON api_keys (user_id);
CREATE INDEX api_keys_by_organization ON api_keys (organization_id);
CREATE INDEX api_keys_by_prefix ON api_keys (prefix);

-- Schema version 7: the key lifecycle (rotation with overlap, address allowlists, canary keys,
-- the last caller, scope usage) and the hash chain of the audit log.

ALTER TABLE api_keys ADD COLUMN replaced_by INTEGER REFERENCES api_keys (id);
-- space-separated networks in CIDR form (a single address as itself); NULL: any address
ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT;
ALTER TABLE api_keys ADD COLUMN canary INTEGER NOT NULL DEFAULT 0 CHECK (canary IN (0, 1));
ALTER TABLE api_keys ADD COLUMN last_used_ip TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_user_agent TEXT;

-- Uses of a scoped key, per scope, written in batches from the live state.
CREATE TABLE api_key_scope_usage (
    api_key_id    INTEGER NOT NULL REFERENCES api_keys (id),
    scope         TEXT    NOT NULL,
    count         INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, scope)
) WITHOUT ROWID;

-- hex SHA-256 of the previous entry's hash (of the same organization; entries without one form
-- their own chain) and this entry's canonical content; entries before this version are chained
-- by the migration, in id order.
ALTER TABLE audit_log ADD COLUMN hash TEXT;

-- The newest entry of each chain (`chain`: the organization's id, 0 for entries without one),
-- written with every entry: new entries chain from here, and `verify` compares it with what it
-- walked, so that removing the newest entries is found too.
CREATE TABLE audit_heads (
    chain    INTEGER PRIMARY KEY,
    last_id  INTEGER NOT NULL,
    hash     TEXT    NOT NULL,
    entries  INTEGER NOT NULL
);

-- Schema version 13, as on SQLite: where the audit stream to a SIEM stands, per destination.
CREATE TABLE audit_stream (
    destination    TEXT    PRIMARY KEY,
    position       BIGINT  NOT NULL,
    holder         TEXT    NOT NULL DEFAULT '',
    lease_until_ms BIGINT  NOT NULL DEFAULT 0
);

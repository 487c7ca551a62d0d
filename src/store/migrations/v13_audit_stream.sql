-- Schema version 13: the audit log streamed to a SIEM (contract 10.5). One row per destination
-- (`audit.syslog_url`): the last entry id the receiver accepted, and which server sends (one at
-- a time, under a lease on the database's clock).
CREATE TABLE audit_stream (
    destination    TEXT    PRIMARY KEY,
    position       INTEGER NOT NULL,
    holder         TEXT    NOT NULL DEFAULT '',
    lease_until_ms INTEGER NOT NULL DEFAULT 0
);

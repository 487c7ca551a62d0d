-- Schema version 10: the login throttle in the database, for servers that share one
-- (PostgreSQL). With one server (SQLite) the throttle lives in memory and these stay empty.
-- `key` is "account:<email>" or "address:<ip or /64>".

-- Failures within the window, and places reserved by attempts whose password is being
-- checked (a reservation older than a minute is from a server that died mid-check).
CREATE TABLE login_attempts (
    id    INTEGER PRIMARY KEY,
    key   TEXT    NOT NULL,
    kind  TEXT    NOT NULL CHECK (kind IN ('failure', 'reserved')),
    at    INTEGER NOT NULL
);
CREATE INDEX login_attempts_by_key ON login_attempts (key, at);

-- Keys locked out, and the refusals not yet audited (audited at most once a minute per key).
CREATE TABLE login_locks (
    key                 TEXT    PRIMARY KEY,
    locked_until        INTEGER NOT NULL DEFAULT 0,
    refused             INTEGER NOT NULL DEFAULT 0,
    refused_audited_at  INTEGER NOT NULL DEFAULT 0
);

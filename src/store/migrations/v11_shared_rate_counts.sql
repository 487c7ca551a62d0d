-- Schema version 11: each server's request counts per key or user and hourly window, for
-- servers that share a database (PostgreSQL): each adds the others' to its own. With one
-- server (SQLite) the counts live in memory only and this stays empty.
CREATE TABLE rate_counts (
    subject      TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('general', 'generation')),
    window_start INTEGER NOT NULL,
    server       TEXT    NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (subject, kind, window_start, server)
);

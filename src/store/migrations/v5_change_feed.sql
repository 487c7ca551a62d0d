-- Schema version 5: the change feed that every server follows, the servers that follow it,
-- and the session epoch that lets a login see a revocation that raced it.

-- One row per change to an object the servers mirror in memory, written in the transaction
-- of the change itself. `seq` comes from `feed_head`, whose row every writer updates: the
-- row lock orders writers, so sequence order is commit order on any database.
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY,
    -- user | session | api_key | organization
    kind       TEXT    NOT NULL CHECK (kind IN ('user', 'session', 'api_key', 'organization')),
    object_id  INTEGER NOT NULL,
    at         INTEGER NOT NULL
);

CREATE TABLE feed_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL
);
INSERT INTO feed_head (id, seq) VALUES (1, 0);

-- Each running server: what it has applied, and when it last said so (unix milliseconds).
CREATE TABLE servers (
    id            TEXT    PRIMARY KEY,
    host          TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    address       TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    heartbeat_ms  INTEGER NOT NULL,
    applied_seq   INTEGER NOT NULL
);

-- Bumped by everything that ends a user's sessions (password change or reset, deactivation):
-- a login commits its session only if the epoch it read with the password is still current.
ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;

-- The epoch poll is gone: the feed replaces it.
DELETE FROM meta WHERE key = 'live_epoch';

-- Schema version 11, as on SQLite: request counts per server, key or user, and hour.
CREATE TABLE rate_counts (
    subject      TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('general', 'generation')),
    window_start BIGINT  NOT NULL,
    server       TEXT    NOT NULL,
    count        BIGINT  NOT NULL,
    PRIMARY KEY (subject, kind, window_start, server)
);

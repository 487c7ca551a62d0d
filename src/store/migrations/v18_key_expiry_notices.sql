-- Schema version 18 (contract 10.4): notices of keys about to expire. One row per key,
-- threshold (days before expiry), channel and recipient, made once (the unique key) by
-- whichever server finds the key first; a server claims a row for a while before it sends,
-- so that exactly one sends it, and a failed send is tried again later.
CREATE TABLE key_notices (
    id               INTEGER PRIMARY KEY,
    api_key_id       INTEGER NOT NULL REFERENCES api_keys (id),
    threshold_days   INTEGER NOT NULL,
    channel          TEXT    NOT NULL CHECK (channel IN ('email', 'webhook')),
    -- the address; '' for the webhook
    recipient        TEXT    NOT NULL,
    -- pending: to send; sent; dropped: the key was revoked, rotated or expired first, or a
    -- nearer threshold was crossed at the same time
    state            TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dropped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    claimed_until    INTEGER,
    -- the claim's own random token: only its holder records the outcome
    claimed_by       TEXT,
    sent_at          INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    UNIQUE (api_key_id, threshold_days, channel, recipient)
);
CREATE INDEX key_notices_due ON key_notices (next_attempt_at) WHERE state = 'pending';

-- The keys that may expire, by their expiry: what the notices look at.
CREATE INDEX api_keys_by_expiry ON api_keys (expires_at) WHERE revoked_at IS NULL;

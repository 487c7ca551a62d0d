-- Schema version 22: the key lists' totals kept rather than counted (issue 27). key_counts
-- holds, per organization and owner (user_id 0: the whole organization), how many keys there
-- are and how many of them are revoked, moved in the transactions that create and revoke keys
-- (keys are never deleted). The expired keys, a matter of the clock, are counted through the
-- index of the live keys' expiry; the active ones are the rest.
CREATE TABLE key_counts (
    organization_id  BIGINT  NOT NULL,
    user_id          BIGINT  NOT NULL,
    keys             BIGINT  NOT NULL,
    revoked          BIGINT  NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);
INSERT INTO key_counts (organization_id, user_id, keys, revoked)
SELECT organization_id, user_id, COUNT(*), COUNT(revoked_at) FROM api_keys
GROUP BY organization_id, user_id;
INSERT INTO key_counts (organization_id, user_id, keys, revoked)
SELECT organization_id, 0, COUNT(*), COUNT(revoked_at) FROM api_keys GROUP BY organization_id;
-- A page of live or of revoked keys, newest first, walks only those: the state is a column of
-- these (the lists say `CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END`, 0 live, 1 revoked: a
-- boolean test PostgreSQL would rewrite as `revoked_at IS NULL`, which no index column matches). The expired keys of an organization or an owner
-- are counted over the live keys' expiry.
CREATE INDEX api_keys_by_state ON api_keys
    (organization_id, (CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END), id);
CREATE INDEX api_keys_by_owner_state ON api_keys
    (user_id, (CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END), id);
CREATE INDEX api_keys_live_expiry ON api_keys (organization_id, expires_at) WHERE revoked_at IS NULL;
CREATE INDEX api_keys_live_expiry_by_user ON api_keys (user_id, expires_at) WHERE revoked_at IS NULL;
-- SQLite's indexes end with the row id; PostgreSQL's need it said, for the newest first.
CREATE INDEX api_keys_by_organization_and_id ON api_keys (organization_id, id);
CREATE INDEX api_keys_by_user_and_id ON api_keys (user_id, id);

-- claribi baseline schema (schema version 1). Later versions are the ordered migrations in
-- src/store/migrate.rs; this file is never edited once released, only extended by them.
-- Times are unix seconds (UTC); ids are rowids.

CREATE TABLE organizations (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id                   INTEGER PRIMARY KEY,
    organization_id      INTEGER NOT NULL REFERENCES organizations (id),
    email                TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    name                 TEXT    NOT NULL DEFAULT '',
    role                 TEXT    NOT NULL
                         CHECK (role IN ('owner', 'administrator', 'analyst', 'member', 'viewer')),
    is_active            INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    -- argon2id, PHC string format
    password_hash        TEXT    NOT NULL,
    password_changed_at  INTEGER NOT NULL,
    created_at           INTEGER NOT NULL
);

CREATE INDEX users_by_organization ON users (organization_id);
-- Exactly one owner per organization: at most one here, at least one by the code that moves it.
CREATE UNIQUE INDEX one_owner_per_organization ON users (organization_id) WHERE role = 'owner';

-- Schema version 4: the organization's content (data sources, reports, dashboards, goals),
-- monthly credit usage and public share links.

CREATE TABLE data_sources (
    id               INTEGER PRIMARY KEY,
    organization_id  INTEGER NOT NULL REFERENCES organizations (id),
    name             TEXT    NOT NULL,
    source_type      TEXT    NOT NULL CHECK (source_type IN ('file', 'database', 'api',
                             'google_analytics', 'google_sheets', 'bigquery_query')),
    status           TEXT    NOT NULL DEFAULT 'active',
    created_by       INTEGER REFERENCES users (id),
    created_at       INTEGER NOT NULL
);
CREATE INDEX data_sources_by_organization ON data_sources (organization_id, id);

CREATE TABLE reports (
    id               INTEGER PRIMARY KEY,
    organization_id  INTEGER NOT NULL REFERENCES organizations (id),
    title            TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    data_source_id   INTEGER REFERENCES data_sources (id) ON DELETE SET NULL,
    prompt           TEXT    NOT NULL DEFAULT '',
    summary          TEXT    NOT NULL DEFAULT '',
    content          TEXT    NOT NULL DEFAULT '',
    credits_used     INTEGER NOT NULL DEFAULT 0,
    created_by       INTEGER REFERENCES users (id),
    created_at       INTEGER NOT NULL,
    completed_at     INTEGER
);
CREATE INDEX reports_by_organization ON reports (organization_id, id);

CREATE TABLE dashboards (
    id                 INTEGER PRIMARY KEY,
    organization_id    INTEGER NOT NULL REFERENCES organizations (id),
    name               TEXT    NOT NULL,
    description        TEXT    NOT NULL DEFAULT '',
    -- JSON array of widget objects
    widgets            TEXT    NOT NULL DEFAULT '[]',
    created_by         INTEGER REFERENCES users (id),
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    last_refreshed_at  INTEGER
);
CREATE INDEX dashboards_by_organization ON dashboards (organization_id, id);

-- Rows counted per organization and kind, kept in the transactions that add or remove rows,
-- so that a page of a large list does not count the whole table.
CREATE TABLE row_counts (
    organization_id  INTEGER NOT NULL,
    kind             TEXT    NOT NULL,
    count            INTEGER NOT NULL,
    PRIMARY KEY (organization_id, kind)
);

CREATE TABLE credit_usage (
    id               INTEGER PRIMARY KEY,
    organization_id  INTEGER NOT NULL REFERENCES organizations (id),
    kind             TEXT    NOT NULL CHECK (kind IN ('report_generation', 'dashboard_refresh')),
    credits          INTEGER NOT NULL,
    target_id        INTEGER,
    at               INTEGER NOT NULL
);
CREATE INDEX credit_usage_by_organization ON credit_usage (organization_id, at);

CREATE TABLE goals (
    id               INTEGER PRIMARY KEY,
    organization_id  INTEGER NOT NULL REFERENCES organizations (id),
    name             TEXT    NOT NULL,
    description      TEXT    NOT NULL DEFAULT '',
    unit             TEXT    NOT NULL DEFAULT '',
    target_value     REAL    NOT NULL,
    current_value    REAL    NOT NULL DEFAULT 0,
    due_date         TEXT,
    created_by       INTEGER REFERENCES users (id),
    created_at       INTEGER NOT NULL
);
CREATE INDEX goals_by_organization ON goals (organization_id, id);

CREATE TABLE goal_milestones (
    id            INTEGER PRIMARY KEY,
    goal_id       INTEGER NOT NULL REFERENCES goals (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    target_value  REAL    NOT NULL,
    reached_at    INTEGER
);
CREATE INDEX goal_milestones_by_goal ON goal_milestones (goal_id);

CREATE TABLE goal_progress (
    id       INTEGER PRIMARY KEY,
    goal_id  INTEGER NOT NULL REFERENCES goals (id) ON DELETE CASCADE,
    value    REAL    NOT NULL,
    at       INTEGER NOT NULL
);
CREATE INDEX goal_progress_by_goal ON goal_progress (goal_id, id);

CREATE TABLE public_links (
    id               INTEGER PRIMARY KEY,
    organization_id  INTEGER NOT NULL REFERENCES organizations (id),
    resource_type    TEXT    NOT NULL CHECK (resource_type IN ('report', 'dashboard')),
    resource_id      INTEGER NOT NULL,
    -- 128+ random bits, base62; a capability shown again to those who may share
    token            TEXT    NOT NULL UNIQUE,
    created_by       INTEGER REFERENCES users (id),
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER,
    revoked_at       INTEGER,
    view_count       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX public_links_by_resource ON public_links (resource_type, resource_id);

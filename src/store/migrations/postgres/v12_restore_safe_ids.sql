-- Schema version 12, as on SQLite: sessions' own secrets, and id counters that never go back.
ALTER TABLE sessions ADD COLUMN secret TEXT NOT NULL DEFAULT '';
CREATE TABLE id_counters (
    name TEXT   PRIMARY KEY,
    last BIGINT NOT NULL
);
INSERT INTO id_counters (name, last) SELECT 'sessions', COALESCE(MAX(id), 0) FROM sessions;
INSERT INTO id_counters (name, last) SELECT 'api_keys', COALESCE(MAX(id), 0) FROM api_keys;
INSERT INTO id_counters (name, last) SELECT 'public_links', COALESCE(MAX(id), 0) FROM public_links;

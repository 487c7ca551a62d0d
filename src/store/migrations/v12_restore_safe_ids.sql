-- Schema version 12: a restore never brings a credential back (contract 10.1).
-- A session's own random secret, carried by its tokens: a token opens only the session it was
-- issued for, never another that took the same id. '' for sessions made before this version.
ALTER TABLE sessions ADD COLUMN secret TEXT NOT NULL DEFAULT '';
-- The highest id ever handed out for sessions, API keys and public links. Their rows are
-- numbered from here, not from what the table holds now, and a restore moves these past every
-- id it knows of: an id is never handed out twice.
CREATE TABLE id_counters (
    name TEXT    PRIMARY KEY,
    last INTEGER NOT NULL
);
INSERT INTO id_counters (name, last) SELECT 'sessions', COALESCE(MAX(id), 0) FROM sessions;
INSERT INTO id_counters (name, last) SELECT 'api_keys', COALESCE(MAX(id), 0) FROM api_keys;
INSERT INTO id_counters (name, last) SELECT 'public_links', COALESCE(MAX(id), 0) FROM public_links;

-- Schema version 21: each audit entry of an organization knows its position (issue 27), so
-- that a list's total and any of its pages are found by one index seek, however long the log:
-- org_seq among the organization's entries, action_seq among its entries of the same action,
-- user_seq among its entries of the same user (NULL without one). Positions start at 1 and
-- follow the ids; the log is append-only, so the newest entry's position is the count.
-- Entries without an organization are never listed by one: they have no positions.
ALTER TABLE audit_log ADD COLUMN org_seq BIGINT;
ALTER TABLE audit_log ADD COLUMN action_seq BIGINT;
ALTER TABLE audit_log ADD COLUMN user_seq BIGINT;
UPDATE audit_log SET org_seq = p.o, action_seq = p.a, user_seq = p.u
FROM (
    SELECT id,
           ROW_NUMBER() OVER (PARTITION BY organization_id ORDER BY id) AS o,
           ROW_NUMBER() OVER (PARTITION BY organization_id, action ORDER BY id) AS a,
           CASE WHEN user_id IS NULL THEN NULL
                ELSE ROW_NUMBER() OVER (PARTITION BY organization_id, user_id ORDER BY id) END AS u
    FROM audit_log WHERE organization_id IS NOT NULL
) AS p
WHERE audit_log.id = p.id;
CREATE INDEX audit_log_org_seq ON audit_log (organization_id, org_seq);
CREATE INDEX audit_log_action_seq ON audit_log (organization_id, action, action_seq);
CREATE INDEX audit_log_user_seq ON audit_log (organization_id, user_id, user_seq);

-- Schema version 19: the audit log's filters served by indexes in their order (issue 27): a
-- page of one action's or one user's entries, newest first, walks only those entries.
CREATE INDEX audit_log_by_action ON audit_log (organization_id, action, id);
CREATE INDEX audit_log_by_user ON audit_log (organization_id, user_id, id);

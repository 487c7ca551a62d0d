-- Schema version 16: a temporary password (contract 10.6), set by an administrator or
-- generated for the first owner. Until its user chooses their own, their sessions open only
-- the password change and `me`.

ALTER TABLE users ADD COLUMN password_temporary INTEGER NOT NULL DEFAULT 0
    CHECK (password_temporary IN (0, 1));

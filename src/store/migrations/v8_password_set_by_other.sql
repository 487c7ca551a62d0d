-- Schema version 8: whether a user's password is one someone else chose (generated at first
-- start, or set by an administrator); while it is, the pages ask the user for their own.
-- Users from before this version are not asked.

ALTER TABLE users ADD COLUMN password_set_by_other INTEGER NOT NULL DEFAULT 0
    CHECK (password_set_by_other IN (0, 1));

-- Schema version 6: organization names are unique, ignoring case. Names that an earlier
-- version let collide get their id appended (`Acme (organization 2)`), the oldest keeping its own, so
-- that no organization is left ambiguous for `claribi user create --org NAME`.

UPDATE organizations
   SET name = name || ' (organization ' || id || ')'
 WHERE EXISTS (SELECT 1 FROM organizations older
                WHERE older.name = organizations.name COLLATE NOCASE
                  AND older.id < organizations.id);

CREATE UNIQUE INDEX organizations_by_name ON organizations (name COLLATE NOCASE);

-- From this version on a scope is stored in canonical form: uuid path segments lowercase,
-- and the id in `/administrativeUnits/{id}` lowercase hyphenated (see `Scope::parse`).
-- Rows written before may hold another spelling in their key columns
-- (`role_assignments.directory_scope_id`, `administrative_unit_members.resource`), where
-- SQL compares them as text; bodies are canonicalized whenever they are read.
--
-- The rewrite is not done here. Lowercasing a whole column is wrong (other segments keep
-- their case), SQLite has no regular expressions, and the rule would then exist three times
-- (Rust, PL/pgSQL, SQLite) and could drift. Rewriting can also make two rows one (two
-- members, or two assignments of one role at one scope, spelled differently), and those
-- must be merged and logged in `changes`, not dropped or left to fail a constraint. So this
-- migration only records the work: the store runs it in Rust right after migrating
-- (`canonical_uuid_scopes` in src/store/sql/write/canonical.rs), in write transactions that
-- log every change, and deletes the row when done. The pass is idempotent, so a crash
-- midway only means it runs again on the next start. Replicas of an earlier release still
-- serving during a rolling upgrade may write new non-canonical keys after the pass; to
-- sweep them once they are gone, insert this row again and run `rolecall migrate`.
CREATE TABLE pending_data_fixes (
    name TEXT COLLATE "C" PRIMARY KEY
);
INSERT INTO pending_data_fixes (name) VALUES ('canonical_uuid_scopes');

-- Rolecall schema (SQLite). The same tables, keys and indexes as the PostgreSQL schema
-- (see migrations/postgres), so one SQL implementation serves both through sqlx's Any
-- driver. Ids are canonical lowercase uuid TEXT, timestamps RFC 3339 UTC TEXT with a
-- fixed precision, entity bodies JSON TEXT; text compares bytewise (BINARY), as the
-- PostgreSQL schema's COLLATE "C" columns do. Booleans are stored as 0/1 and are only
-- ever compared, never read back (the Any driver cannot decode an SQLite integer as bool).

-- Each entity table holds its tenant, its key columns (uniqueness, filters, order), the
-- revision of its last write (its ETag) and `body`, the entity as JSON (the source of
-- truth for reads). Built-in roles are not stored: they ship with the binary.

-- Exactly one row. Every write transaction (BEGIN IMMEDIATE, so it holds the database
-- write lock from its start) increments it first, so revisions commit in order and
-- without gaps.
CREATE TABLE revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);

-- Every tenant that has ever been written (the dump lists each one).
CREATE TABLE tenants (
    tenant_id TEXT PRIMARY KEY,
    created_revision INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

-- Custom role definitions. `display_name_key` is the lowercased display name (lowercased
-- in Rust, so both backends fold case the same way), unique per tenant.
CREATE TABLE role_definitions (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    id TEXT NOT NULL,
    display_name_key TEXT NOT NULL,
    is_enabled BOOLEAN NOT NULL,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, display_name_key)
);

-- Role assignments; one per (principal, role, scope). The role may be a built-in, so
-- there is no foreign key to role_definitions.
CREATE TABLE role_assignments (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    role_definition_id TEXT NOT NULL,
    directory_scope_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, principal_id, role_definition_id, directory_scope_id)
);
CREATE INDEX role_assignments_by_principal ON role_assignments (tenant_id, principal_id, id);
CREATE INDEX role_assignments_by_role ON role_assignments (tenant_id, role_definition_id, id);
CREATE INDEX role_assignments_by_scope ON role_assignments (tenant_id, directory_scope_id, id);

CREATE TABLE deny_assignments (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX deny_assignments_by_principal ON deny_assignments (tenant_id, principal_id, id);

CREATE TABLE groups (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Direct membership edges. A member group must exist when added; cycles are allowed.
CREATE TABLE group_members (
    tenant_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, group_id, member_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id)
);
CREATE INDEX group_members_by_member ON group_members (tenant_id, member_id);

CREATE TABLE administrative_units (
    tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
    id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE administrative_unit_members (
    tenant_id TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    revision INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, unit_id, resource),
    FOREIGN KEY (tenant_id, unit_id) REFERENCES administrative_units (tenant_id, id)
);

-- The change log: the audit trail and the feed replicas follow. One row per object a
-- write touched; `sequence` numbers the rows of one revision from 0, and (revision,
-- sequence) is the feed's order. `before`/`after` are the entity JSON (null on create and
-- on delete respectively); `at` is the write's RFC 3339 time.
CREATE TABLE changes (
    revision INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    tenant_id TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    op TEXT NOT NULL,
    before TEXT,
    after TEXT,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (revision, sequence)
);
CREATE INDEX changes_by_tenant ON changes (tenant_id, revision, sequence);

-- Rolecall schema (PostgreSQL).
--
-- Ids are canonical lowercase uuid TEXT, timestamps RFC 3339 UTC TEXT with a fixed
-- precision (so text order is time order), and entity bodies JSON TEXT. This is
-- deliberate: the same SQL runs through sqlx's Any driver on PostgreSQL and SQLite, and
-- stays within what CockroachDB and YugabyteDB accept. Key columns use COLLATE "C" so
-- ordering (and so keyed pagination) is bytewise, identical to SQLite and to Rust.
--
-- Each entity table holds its tenant, its key columns (uniqueness, filters, order), the
-- revision of its last write (its ETag) and `body`, the entity as JSON (the source of
-- truth for reads). Built-in roles are not stored: they ship with the binary.

-- Exactly one row. Every write transaction increments it first; the row lock held until
-- commit serializes writers, so revisions commit in order and without gaps.
CREATE TABLE revision (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);

-- Every tenant that has ever been written (the dump lists each one).
CREATE TABLE tenants (
    tenant_id TEXT COLLATE "C" PRIMARY KEY,
    created_revision BIGINT NOT NULL,
    created_at TEXT NOT NULL
);

-- Custom role definitions. `display_name_key` is the lowercased display name (lowercased
-- in Rust, so both backends fold case the same way), unique per tenant.
CREATE TABLE role_definitions (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (tenant_id),
    id TEXT COLLATE "C" NOT NULL,
    display_name_key TEXT COLLATE "C" NOT NULL,
    is_enabled BOOLEAN NOT NULL,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, display_name_key)
);

-- Role assignments; one per (principal, role, scope). The role may be a built-in, so
-- there is no foreign key to role_definitions.
CREATE TABLE role_assignments (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (tenant_id),
    id TEXT COLLATE "C" NOT NULL,
    principal_id TEXT COLLATE "C" NOT NULL,
    role_definition_id TEXT COLLATE "C" NOT NULL,
    directory_scope_id TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, principal_id, role_definition_id, directory_scope_id)
);
CREATE INDEX role_assignments_by_principal ON role_assignments (tenant_id, principal_id, id);
CREATE INDEX role_assignments_by_role ON role_assignments (tenant_id, role_definition_id, id);
CREATE INDEX role_assignments_by_scope ON role_assignments (tenant_id, directory_scope_id, id);

CREATE TABLE deny_assignments (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (tenant_id),
    id TEXT COLLATE "C" NOT NULL,
    principal_id TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX deny_assignments_by_principal ON deny_assignments (tenant_id, principal_id, id);

CREATE TABLE groups (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (tenant_id),
    id TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Direct membership edges. A member group must exist when added; cycles are allowed.
CREATE TABLE group_members (
    tenant_id TEXT COLLATE "C" NOT NULL,
    group_id TEXT COLLATE "C" NOT NULL,
    member_id TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, group_id, member_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id)
);
CREATE INDEX group_members_by_member ON group_members (tenant_id, member_id);

CREATE TABLE administrative_units (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (tenant_id),
    id TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE administrative_unit_members (
    tenant_id TEXT COLLATE "C" NOT NULL,
    unit_id TEXT COLLATE "C" NOT NULL,
    resource TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, unit_id, resource),
    FOREIGN KEY (tenant_id, unit_id) REFERENCES administrative_units (tenant_id, id)
);

-- The change log: the audit trail and the feed replicas follow. One row per object a
-- write touched; `sequence` numbers the rows of one revision from 0, and (revision,
-- sequence) is the feed's order. `before`/`after` are the entity JSON (null on create and
-- on delete respectively); `at` is the write's RFC 3339 time.
CREATE TABLE changes (
    revision BIGINT NOT NULL,
    sequence BIGINT NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL,
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

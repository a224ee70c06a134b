-- Privileged Identity Management. Eligibilities grant nothing; an activation is a role
-- assignment that names its request (in its body); these tables hold what PIM alone reads.
-- Unique per (principal, role, scope), like role assignments.
CREATE TABLE role_eligibility_schedules (
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
CREATE INDEX role_eligibility_schedules_by_role ON role_eligibility_schedules (tenant_id, role_definition_id, id);

-- `status` and `end_date_time` (fixed-width RFC 3339 text, so text order is time order)
-- find running activations that have ended.
CREATE TABLE role_assignment_schedule_requests (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (tenant_id),
    id TEXT COLLATE "C" NOT NULL,
    principal_id TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    end_date_time TEXT COLLATE "C",
    revision BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX role_assignment_schedule_requests_by_principal ON role_assignment_schedule_requests (tenant_id, principal_id, id);
CREATE INDEX role_assignment_schedule_requests_by_status ON role_assignment_schedule_requests (status, end_date_time);

-- One row per role whose policy differs from the default; `id` is the role's id.
CREATE TABLE role_management_policies (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (tenant_id),
    id TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

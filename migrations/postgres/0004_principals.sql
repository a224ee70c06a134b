-- The principal directory: users and service principals that callers may name by an alias
-- (email, UPN, login name, an identity provider's opaque id) as well as by object id. A
-- principal record is optional: role assignments name object ids and keep working for ids
-- the directory does not hold, and deleting a record takes nothing else with it.
--
-- `principal_type` is `user` or `servicePrincipal` (filtered on); the body holds the
-- whole principal, aliases and attributes included.
CREATE TABLE principals (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (tenant_id),
    id TEXT COLLATE "C" NOT NULL,
    principal_type TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX principals_by_type ON principals (tenant_id, principal_type, id);

-- One row per alias, derived from the principal's body in the same write (never logged on
-- its own). `alias_key` is the alias lowercased in Rust (Unicode lowercase, so both
-- backends fold case the same way); the primary key makes an alias unique per tenant
-- ignoring case, so two writers can never both take it.
CREATE TABLE principal_aliases (
    tenant_id TEXT COLLATE "C" NOT NULL,
    alias_key TEXT COLLATE "C" NOT NULL,
    principal_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, alias_key),
    FOREIGN KEY (tenant_id, principal_id) REFERENCES principals (tenant_id, id)
);
CREATE INDEX principal_aliases_by_principal ON principal_aliases (tenant_id, principal_id);

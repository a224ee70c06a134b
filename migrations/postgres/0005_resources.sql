-- The resource directory: resources named as AuthZEN names them, a `type` and the caller's
-- own `id` (any text without control characters, unique per tenant and type), each at a
-- resource path (its scope). A record is optional: checks take any resource path without
-- one. It is what resource search enumerates, and its attributes are the defaults for
-- `@Resource[...]`.
--
-- `path` is the resource path in canonical form (filtered on by prefix); the body holds the
-- whole resource, attributes included. Both the key and the path compare byte-wise
-- (`COLLATE "C"`), as SQLite does, so listings page in one order on both backends.
CREATE TABLE resources (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (tenant_id),
    resource_type TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    path TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant_id, resource_type, id)
);
CREATE INDEX resources_by_path ON resources (tenant_id, path);

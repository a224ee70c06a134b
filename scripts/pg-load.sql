-- Fills a migrated Rolecall database with a synthetic directory: at the default size L, one
-- tenant, 1,000,000 role assignments of 200,000 users and 50,000 groups over the built-in
-- roles at scopes in a tree of depth 4, 50,000 groups each holding 4 users, and 10,000
-- group-in-group edges. `-v scale=10` divides every count by 10 (size M), `-v scale=1000`
-- by 1000 (size S). Used by scripts/measure-pg-load and scripts/soak.
\if :{?scale}
\else
\set scale 1
\endif
\set tenant '''00000000-0000-0000-0000-000000000001'''
INSERT INTO tenants (tenant_id, created_revision, created_at)
VALUES (:tenant, 1, '2026-11-23T00:00:00.000000Z');
UPDATE revision SET value = 1;

CREATE TEMP TABLE builtin(n int, id text);
INSERT INTO builtin VALUES
 (0,'62e90394-69f5-4237-9190-012177145e10'),(1,'f2ef992c-3afb-46b9-b7cf-a126ee74c451'),
 (2,'9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3'),(3,'158c047a-c907-4556-b7ef-446551a6b5f7'),
 (4,'cf1c38e5-3621-4004-a7cb-879624dced7c'),(5,'e8611ab8-c189-46e8-94e1-60213ab1f814'),
 (6,'fe930be7-5e62-47db-91af-98c3a49a38b1'),(7,'88d8e3e3-8f55-4a1e-953a-9b9898b8876b'),
 (8,'fdd7a751-b60b-444a-984c-02652fe8fa1c'),(9,'729827e3-9c14-49f7-bb1b-9608f156bbb8'),
 (10,'194ae4cb-b126-40b2-bd5b-6091b380977d'),(11,'5d6b6bb7-de71-4623-b4af-96380a352509');

CREATE FUNCTION pg_temp.u(kind int, n int) RETURNS text LANGUAGE sql IMMUTABLE AS
$$ SELECT (substr(h,1,8)||'-'||substr(h,9,4)||'-4'||substr(h,14,3)||'-8'||substr(h,18,3)||'-'||substr(h,21,12))
   FROM (SELECT md5(kind::text || ':' || n::text) AS h) x $$;

INSERT INTO groups (tenant_id, id, revision, body)
SELECT :tenant, pg_temp.u(2, g), 1, json_build_object(
  'id', pg_temp.u(2, g), 'displayName', 'group ' || g, 'description', '',
  'createdDateTime', '2026-11-23T00:00:00.000000Z', 'lastModifiedDateTime', '2026-11-23T00:00:00.000000Z')::text
FROM generate_series(0, 50000 / :scale - 1) g;

INSERT INTO group_members (tenant_id, group_id, member_id, revision, body)
SELECT :tenant, pg_temp.u(2, m / 4), pg_temp.u(1, m), 1, json_build_object(
  'groupId', pg_temp.u(2, m / 4), 'id', pg_temp.u(1, m), 'type', 'user',
  'createdDateTime', '2026-11-23T00:00:00.000000Z')::text
FROM generate_series(0, 200000 / :scale - 1) m;

INSERT INTO group_members (tenant_id, group_id, member_id, revision, body)
SELECT :tenant, pg_temp.u(2, g * 5 + 1), pg_temp.u(2, g * 5), 1, json_build_object(
  'groupId', pg_temp.u(2, g * 5 + 1), 'id', pg_temp.u(2, g * 5), 'type', 'group',
  'createdDateTime', '2026-11-23T00:00:00.000000Z')::text
FROM generate_series(0, 10000 / :scale - 1) g;

INSERT INTO role_assignments (tenant_id, id, principal_id, role_definition_id, directory_scope_id, revision, body)
SELECT :tenant, a.id, a.principal, a.role, a.scope, 1, json_build_object(
  'id', a.id, 'principalId', a.principal, 'principalType', a.kind, 'roleDefinitionId', a.role,
  'directoryScopeId', a.scope, 'startDateTime', NULL, 'endDateTime', NULL,
  'createdDateTime', '2026-11-23T00:00:00.000000Z')::text
FROM (
  SELECT pg_temp.u(3, i) AS id,
         CASE WHEN i % 5 = 0 THEN pg_temp.u(2, i % (50000 / :scale)) ELSE pg_temp.u(1, i % (200000 / :scale)) END AS principal,
         CASE WHEN i % 5 = 0 THEN 'group' ELSE 'user' END AS kind,
         (SELECT id FROM builtin WHERE n = i % 12) AS role,
         '/d' || (i % 10) || '/e' || (i % 100) || '/f' || (i % 1000) || '/r' || i AS scope
  FROM generate_series(0, 1000000 / :scale - 1) i
) a;
ANALYZE;

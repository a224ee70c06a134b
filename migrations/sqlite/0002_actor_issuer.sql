-- Who vouched for a change's actor: the `iss` of the token that made it, kept apart from
-- the principal id in `actor`. NULL for the admin key, bootstrap, and every row written
-- before this migration.
ALTER TABLE changes ADD COLUMN actor_issuer TEXT;

-- The admin role: the same column and rule as migrations/sqlite/0015_admin_role.sql.
--
-- Users with is_admin may use the admin console at <public_url>/admin.
-- The store makes the first user ever created an admin (create_user and
-- create_federated_user set the flag when the table was empty). On an
-- existing database this migration makes the oldest user (by creation
-- time, then username) the admin; `mcpgate user admin USER on|off` changes it.
ALTER TABLE users ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT FALSE;

-- disabled_at: set while an admin has disabled the account (it cannot sign
-- in; disabling also ended its sessions and revoked its tokens); NULL otherwise.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

UPDATE users SET is_admin = TRUE
 WHERE id = (SELECT id FROM users ORDER BY created_at, username LIMIT 1);

-- The admin role (issue #20, docs/operations.md "Admin console").
--
-- Users with is_admin = 1 may use the admin console at <public_url>/admin.
-- The store makes the first user ever created an admin (create_user and
-- create_federated_user set the flag when the table was empty). On an
-- existing database this migration makes the oldest user (by creation
-- time, then username) the admin; `mcpgate user admin USER on|off` changes it.
ALTER TABLE users ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0
    CHECK (is_admin IN (0, 1));

-- disabled_at: set while an admin has disabled the account (it cannot sign
-- in; disabling also ended its sessions and revoked its tokens); NULL otherwise.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

UPDATE users SET is_admin = 1
 WHERE id = (SELECT id FROM users ORDER BY created_at, username LIMIT 1);

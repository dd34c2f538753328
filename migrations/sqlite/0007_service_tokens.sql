-- Service tokens (issue #16): the client credentials grant (RFC 6749 §4.4)
-- issues access tokens whose subject is the client itself, never a user.
-- Such a token has no user: access_tokens.user_id becomes nullable (NULL
-- for a service token). A user's tokens still go with the user (ON DELETE
-- CASCADE); a service token goes with its client.
--
-- SQLite cannot drop a NOT NULL constraint: the table is rebuilt. No other
-- table refers to access_tokens.
CREATE TABLE access_tokens_new (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    grant_id   TEXT    NOT NULL,
    client_id  TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id    TEXT    REFERENCES users (id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL,
    resource   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;

INSERT INTO access_tokens_new
    (token_hash, grant_id, client_id, user_id, scope, resource, created_at, expires_at, revoked_at)
SELECT token_hash, grant_id, client_id, user_id, scope, resource, created_at, expires_at, revoked_at
FROM access_tokens;

DROP TABLE access_tokens;
ALTER TABLE access_tokens_new RENAME TO access_tokens;

CREATE INDEX access_tokens_grant_id ON access_tokens (grant_id);
CREATE INDEX access_tokens_client_id ON access_tokens (client_id);
CREATE INDEX access_tokens_user_id ON access_tokens (user_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

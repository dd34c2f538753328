-- mcpgate schema for PostgreSQL: the same tables, columns and indexes as
-- migrations/sqlite/0001_init.sql.
--
-- Times are Unix seconds (BIGINT). Tokens, codes, sessions and secrets are
-- stored only as SHA-256 hashes. Scopes are stored in their canonical
-- space-joined form, client metadata as JSON text (read back and parsed by
-- mcpgate, never queried). Everything that belongs to a user or a client
-- goes with it (ON DELETE CASCADE).

CREATE TABLE users (
    id            TEXT   NOT NULL PRIMARY KEY,
    username      TEXT   NOT NULL UNIQUE,
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE clients (
    client_id    TEXT   NOT NULL PRIMARY KEY,
    secret_hash  TEXT,
    metadata     TEXT   NOT NULL,
    issued_at    BIGINT NOT NULL,
    last_used_at BIGINT
);

CREATE INDEX clients_issued_at ON clients (issued_at);

CREATE TABLE consents (
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT   NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope      TEXT   NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE INDEX consents_client_id ON consents (client_id);

CREATE TABLE login_sessions (
    session_hash TEXT   NOT NULL PRIMARY KEY,
    user_id      TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE INDEX login_sessions_user_id ON login_sessions (user_id);
CREATE INDEX login_sessions_expires_at ON login_sessions (expires_at);

CREATE TABLE auth_codes (
    code_hash             TEXT    NOT NULL PRIMARY KEY,
    grant_id              TEXT    NOT NULL,
    client_id             TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id               TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri          TEXT    NOT NULL,
    redirect_uri_explicit BOOLEAN NOT NULL,
    scope                 TEXT    NOT NULL,
    resource              TEXT    NOT NULL,
    code_challenge        TEXT,
    created_at            BIGINT  NOT NULL,
    expires_at            BIGINT  NOT NULL,
    used_at               BIGINT
);

CREATE INDEX auth_codes_grant_id ON auth_codes (grant_id);
CREATE INDEX auth_codes_client_id ON auth_codes (client_id);
CREATE INDEX auth_codes_user_id ON auth_codes (user_id);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE access_tokens (
    token_hash TEXT   NOT NULL PRIMARY KEY,
    grant_id   TEXT   NOT NULL,
    client_id  TEXT   NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope      TEXT   NOT NULL,
    resource   TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX access_tokens_grant_id ON access_tokens (grant_id);
CREATE INDEX access_tokens_client_id ON access_tokens (client_id);
CREATE INDEX access_tokens_user_id ON access_tokens (user_id);
CREATE INDEX access_tokens_expires_at ON access_tokens (expires_at);

CREATE TABLE refresh_tokens (
    token_hash     TEXT   NOT NULL PRIMARY KEY,
    grant_id       TEXT   NOT NULL,
    client_id      TEXT   NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id        TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope          TEXT   NOT NULL,
    resource       TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    rotated_at     BIGINT,
    successor_hash TEXT,
    revoked_at     BIGINT
);

CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_client_id ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE server_keys (
    name TEXT  NOT NULL PRIMARY KEY,
    key  BYTEA NOT NULL
);

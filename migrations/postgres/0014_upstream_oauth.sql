-- Per-user OAuth to upstream MCP servers (issue #19, docs/upstream-oauth.md).

-- The vault's key ids. Each key is derived from the server key and its kid
-- (mcpgate_core::upstream_oauth::vault); no key material is stored here.
-- The newest row is the key new rows are sealed with; `mcpgate
-- rotate-vault-key` adds one and re-seals every row under it.
CREATE TABLE upstream_vault_keys (
    kid        TEXT    NOT NULL PRIMARY KEY,
    created_at BIGINT  NOT NULL
);

-- One user's tokens at one upstream. `sealed` is the access and refresh
-- token, AES-256-GCM under the key `kid`, bound to (kid, user_id,
-- upstream); expiry, scope and the account name are not secret. `version`
-- grows with every write: a refresh or a re-seal replaces the row only if
-- it still has the version it read (compare-and-swap). `lease_until`: one
-- instance holds the refresh of this row until then (single flight).
CREATE TABLE upstream_tokens (
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    upstream     TEXT    NOT NULL,
    kid          TEXT    NOT NULL,
    sealed       TEXT    NOT NULL,
    expires_at   BIGINT,
    scope        TEXT,
    account      TEXT,
    version      BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    last_used_at BIGINT,
    lease_until  BIGINT,
    PRIMARY KEY (user_id, upstream)
);

-- Clients mcpgate registered at an upstream's authorization server
-- (RFC 7591), one per issuer and redirect URI; a client secret, if one was
-- issued, is sealed like the tokens (row: user '' and the issuer).
CREATE TABLE upstream_clients (
    issuer        TEXT    NOT NULL,
    redirect_uri  TEXT    NOT NULL,
    client_id     TEXT    NOT NULL,
    kid           TEXT,
    sealed_secret TEXT,
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (issuer, redirect_uri)
);

-- Connect flows under way: a one-time link given to the user's assistant
-- (kind 'link'), then the authorization request sent to the upstream
-- (kind 'state', bound to the browser). Only hashes of the link and the
-- state are stored; each row is taken (deleted) once.
CREATE TABLE upstream_connects (
    key_hash     TEXT    NOT NULL PRIMARY KEY,
    kind         TEXT    NOT NULL,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    upstream     TEXT    NOT NULL,
    browser_hash TEXT,
    details      TEXT,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);

CREATE INDEX upstream_connects_expires_at ON upstream_connects (expires_at);

-- Sign-in through upstream identity providers (src/federation).

-- A provider identity (provider id + the provider's subject) signs in as
-- one local user. A user may have several; they go with the user.
CREATE TABLE user_identities (
    provider_id TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email       TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (provider_id, subject)
) STRICT;

CREATE INDEX user_identities_user_id ON user_identities (user_id);

-- Sign-ins that went to a provider and have not come back. Only the hash
-- of our `state` and of the browser-binding cookie are stored; the PKCE
-- verifier and nonce are derived from `state` under the server key.
-- Taken (deleted) exactly once by the callback.
CREATE TABLE federation_logins (
    state_hash   TEXT    NOT NULL PRIMARY KEY,
    provider_id  TEXT    NOT NULL,
    browser_hash TEXT    NOT NULL,
    return_to    TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX federation_logins_expires_at ON federation_logins (expires_at);

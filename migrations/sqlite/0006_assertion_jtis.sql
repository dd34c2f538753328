-- private_key_jwt (issue #16, RFC 7523 §3 item 7): the jti of every client
-- assertion accepted, kept until the assertion expires (exp + leeway), so
-- that an assertion is accepted once, whichever instance receives it.
-- jti_hash is the SHA-256 hex of the jti. Purged with the other expired rows.
CREATE TABLE client_assertion_jtis (
    client_id  TEXT    NOT NULL,
    jti_hash   TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti_hash)
) STRICT;

CREATE INDEX client_assertion_jtis_expires_at ON client_assertion_jtis (expires_at);

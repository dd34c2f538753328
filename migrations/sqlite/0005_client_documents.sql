-- Client ID Metadata Documents (issue #16): the clients row of a
-- 'metadata_document' client is the cached document; these say when it was
-- fetched and until when it is fresh (NULL for other clients).
ALTER TABLE clients ADD COLUMN document_fetched_at INTEGER;
ALTER TABLE clients ADD COLUMN document_fresh_until INTEGER;

-- Remembered consent is keyed by client and redirect URI. Rows from before
-- get an empty redirect URI, which never matches: users consent once more.
CREATE TABLE consents_new (
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id    TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    redirect_uri TEXT    NOT NULL DEFAULT '',
    scope        TEXT    NOT NULL,
    granted_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id, redirect_uri)
) STRICT;

INSERT INTO consents_new (user_id, client_id, redirect_uri, scope, granted_at)
    SELECT user_id, client_id, '', scope, granted_at FROM consents;

DROP TABLE consents;
ALTER TABLE consents_new RENAME TO consents;
CREATE INDEX consents_client_id ON consents (client_id);

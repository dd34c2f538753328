-- Client ID Metadata Documents (issue #16): the clients row of a
-- 'metadata_document' client is the cached document; these say when it was
-- fetched and until when it is fresh (NULL for other clients).
ALTER TABLE clients ADD COLUMN document_fetched_at BIGINT;
ALTER TABLE clients ADD COLUMN document_fresh_until BIGINT;

-- Remembered consent is keyed by client and redirect URI. Rows from before
-- get an empty redirect URI, which never matches: users consent once more.
ALTER TABLE consents ADD COLUMN redirect_uri TEXT NOT NULL DEFAULT '';
ALTER TABLE consents DROP CONSTRAINT consents_pkey;
ALTER TABLE consents ADD PRIMARY KEY (user_id, client_id, redirect_uri);

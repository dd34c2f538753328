-- How a client came to be known (issue #16): 'dynamic' (RFC 7591
-- registration), 'metadata_document' (its client_id is the URL of its
-- Client ID Metadata Document; the row is the cached document) or
-- 'preregistered' (mcpgate client add).
ALTER TABLE clients ADD COLUMN kind TEXT NOT NULL DEFAULT 'dynamic'
    CHECK (kind IN ('dynamic', 'metadata_document', 'preregistered'));

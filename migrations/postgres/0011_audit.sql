-- The audit log (docs/audit.md): one row per security-relevant event
-- (sign-in, consent, tokens, clients, tool calls through the gateway).
-- Append-only: rows are never changed (the trigger below refuses UPDATE)
-- and only deleted by the retention purge (`audit_retention_days`).
-- No token, secret, password, code or PKCE verifier is ever stored here.
-- No foreign keys: a record outlives the user or client it names.
CREATE TABLE audit_log (
    -- Increasing; the cursor of `mcpgate audit tail -f`.
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Unix milliseconds.
    at_ms       BIGINT  NOT NULL,
    -- `sign_in`, `consent`, `token.issued`, `tool.call`, ... (docs/audit.md).
    kind        TEXT    NOT NULL,
    -- `ok`, `denied` or `error`.
    outcome     TEXT    NOT NULL,
    user_id     TEXT,
    username    TEXT,
    client_id   TEXT,
    upstream    TEXT,
    -- The tool, prompt or resource URI of a gateway event.
    target      TEXT,
    duration_ms BIGINT,
    client_addr TEXT,
    -- The instance that wrote the record (`instance_id`, or `cli`).
    instance    TEXT    NOT NULL,
    -- A small JSON object, or NULL.
    detail      TEXT
);

CREATE INDEX audit_log_at ON audit_log (at_ms);
CREATE INDEX audit_log_username ON audit_log (username);
CREATE INDEX audit_log_client ON audit_log (client_id);
CREATE INDEX audit_log_target ON audit_log (target);

CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

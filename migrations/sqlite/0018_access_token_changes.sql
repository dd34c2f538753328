-- A counter that moves whenever an access token row is changed or deleted,
-- by any process and any path: a revocation, a cascade from a removed user
-- or client (SQLite runs a child table's triggers for the rows a foreign
-- key's ON DELETE CASCADE removes), the purge. The stream watcher
-- (src/mcp/streams/watcher.rs) reads it on every check and asks about the
-- tokens of open streams only when it moved: with 100,000 idle streams of
-- as many tokens, asking about them all, all the time, took a sixth of a
-- core and tripled the p99 of the calls beside them (docs/benchmarks.md).
-- Issuing a token inserts and does not move it.
CREATE TABLE access_token_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO access_token_changes (id, n) VALUES (1, 0);

CREATE TRIGGER access_tokens_changed AFTER UPDATE ON access_tokens
BEGIN
    UPDATE access_token_changes SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER access_tokens_deleted AFTER DELETE ON access_tokens
BEGIN
    UPDATE access_token_changes SET n = n + 1 WHERE id = 1;
END;

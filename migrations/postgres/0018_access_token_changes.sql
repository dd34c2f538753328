-- A counter that moves whenever access token rows are changed or deleted,
-- by any process and any path: a revocation, a cascade from a removed user
-- or client, the purge. The stream watcher (src/mcp/streams/watcher.rs)
-- reads it on every check and asks about the tokens of open streams only
-- when it moved: with 100,000 idle streams of as many tokens, asking about
-- them all, all the time, took a sixth of a core and tripled the p99 of
-- the calls beside them (docs/benchmarks.md). Issuing a token inserts and
-- does not move it.
--
-- A row, not a sequence: the row's new value is seen only once the change
-- that moved it is committed, so a watcher that sees it moved and then asks
-- about its tokens sees the change too (a sequence moves before the commit).
-- A statement trigger: one increment per statement, however many rows.
CREATE TABLE access_token_changes (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    n  BIGINT   NOT NULL
);
INSERT INTO access_token_changes (id, n) VALUES (1, 0);

CREATE FUNCTION access_tokens_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE access_token_changes SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER access_tokens_changed AFTER UPDATE OR DELETE ON access_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION access_tokens_changed();

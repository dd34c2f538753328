-- Several instances on one database (docs/scaling.md): shared state of the
-- MCP transports. Times are Unix seconds.

-- Streamable HTTP sessions, so that any instance can restore a session
-- (rmcp replays the stored `initialize`) and refuse another user's token.
CREATE TABLE cluster_mcp_sessions (
    session_id TEXT   NOT NULL PRIMARY KEY,
    -- The user whose token created the session (NULL for a moment, between
    -- rmcp storing the state and the gate recording the owner).
    user_id    TEXT,
    -- rmcp's SessionState (the client's initialize parameters) as JSON.
    state      TEXT,
    created_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL
);

CREATE INDEX cluster_mcp_sessions_seen_at ON cluster_mcp_sessions (seen_at);

-- Legacy SSE sessions: which instance holds the event stream.
CREATE TABLE cluster_sse_sessions (
    session_id  TEXT   NOT NULL PRIMARY KEY,
    user_id     TEXT   NOT NULL,
    instance_id TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    -- Refreshed by the holding instance's heartbeat.
    seen_at     BIGINT NOT NULL
);

CREATE INDEX cluster_sse_sessions_instance ON cluster_sse_sessions (instance_id);
CREATE INDEX cluster_sse_sessions_seen_at ON cluster_sse_sessions (seen_at);

-- Messages posted on one instance for a stream held by another; the
-- holder takes (deletes) them in id order.
CREATE TABLE cluster_sse_messages (
    id         BIGSERIAL PRIMARY KEY,
    session_id TEXT   NOT NULL REFERENCES cluster_sse_sessions (session_id) ON DELETE CASCADE,
    -- Who sent it (the authenticated caller, as JSON; no token, only its hash).
    caller     TEXT   NOT NULL,
    -- The JSON-RPC message.
    message    TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX cluster_sse_messages_session ON cluster_sse_messages (session_id, id);

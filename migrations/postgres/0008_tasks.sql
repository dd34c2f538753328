-- Tasks (SEP-2663, issue #17): a tools/call that mcpgate runs in the
-- background. The owner (Caller::owner(): a user id, or client:<id> for a
-- service) and the client are who may see it; the upstream and tool name
-- what runs; status/result/error/input_requests are the DetailedTask.
-- result, error and input_requests are JSON. Times: created_at_ms and
-- updated_at_ms in Unix milliseconds (the wire's timestamps), expires_at in
-- Unix seconds (createdAt + ttlMs, rounded up), purged by the housekeeping.
-- No foreign key to users: a service owner is not a user; a deleted user's
-- tasks expire with their TTL.
CREATE TABLE mcp_tasks (
    task_id        TEXT    NOT NULL PRIMARY KEY,
    owner          TEXT    NOT NULL,
    client_id      TEXT    NOT NULL,
    upstream       TEXT    NOT NULL,
    tool           TEXT    NOT NULL,
    instance_id    TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    status_message TEXT,
    result         TEXT,
    error          TEXT,
    input_requests TEXT,
    ttl_ms         BIGINT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);

CREATE INDEX mcp_tasks_expires_at ON mcp_tasks (expires_at);

-- Answers to a task's questions (tasks/update) taken by an instance other
-- than the one running the task: queued here for the runner's instance
-- (told over the bus), which records the outcome ('' = accepted, else the
-- JSON-RPC error as JSON) for the instance waiting to acknowledge.
CREATE TABLE mcp_task_inputs (
    id         BIGSERIAL PRIMARY KEY,
    task_id    TEXT    NOT NULL,
    responses  TEXT    NOT NULL,
    taken      BOOLEAN NOT NULL DEFAULT FALSE,
    outcome    TEXT,
    created_at BIGINT  NOT NULL
);

CREATE INDEX mcp_task_inputs_task_id ON mcp_task_inputs (task_id);
CREATE INDEX mcp_task_inputs_created_at ON mcp_task_inputs (created_at);

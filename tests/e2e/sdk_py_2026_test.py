"""The official Python SDK (PyPI `mcp` 2.3.0) over MCP 2026-07-28 through the
gateway server of run.sh, whose upstream `mcpgate-fixture-upstream
--conformance` (prefix "") speaks a 2025 revision over stdio.

Each case signs in with OAuth (`mcp.client.auth.OAuthClientProvider` as the
httpx2 auth; the sign-in and consent forms posted like a browser, see
sdk_py_test.py) and connects with `mcp.Client(..., mode="auto")`, which
probes `server/discover` and must settle on 2026-07-28:

1. multi-round-trip (SEP-2322): `test_elicitation` makes the upstream send
   `elicitation/create` during the call; the gateway answers with an
   InputRequiredResult, the SDK's driver calls `elicitation_callback` and
   retries with `inputResponses` + `requestState`, and the answer reaches
   the waiting upstream. Done manually too (`allow_input_required=True`):
   a second user cannot use the first user's `requestState`;
2. subscriptions (SEP-2575): `client.listen(tools_list_changed=True)` yields
   `ToolsListChanged` when the upstream's tool list changes
   (`test_trigger_tool_change`);
3. tasks (SEP-2663): the SDK ships no tasks extension in 2.3.0, but its
   extension API (SEP-2133: `ClientExtension`, `ResultClaim` for
   `resultType: "task"`, `ClientSession.send_request` with a request type
   whose `name_param` is `taskId`) is how a client adds one: `TasksExtension`
   below advertises `io.modelcontextprotocol/tasks`, and `call_tool` of the
   task-supporting `slow_compute` returns a task that the claim's resolver
   polls with `tasks/get` (working, then completed with the result inlined).
   A second user's `tasks/get` of that task id fails.

A plain script like sdk_py_test.py (whose helpers it imports): run through
tests/e2e/run.sh, which sets E2E_GW_ISSUER, E2E_GW_USER, E2E_GW_PASSWORD,
E2E_GW_USER2 and E2E_GW_PASSWORD2 (and E2E_ISSUER, read by sdk_py_test.py).
Prints one `ok`/`FAIL` line per case and `python-2026: N passed, N failed`.
"""

from __future__ import annotations

import asyncio
import sys
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import urljoin

import anyio
import httpx2
import mcp_types as types
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ToolsListChanged
from mcp.shared.auth import OAuthClientMetadata
from mcp.shared.exceptions import MCPError

from sdk_py_test import REDIRECT_URI, HeadlessOAuth, MemoryStorage, describe, env

MODERN = "2026-07-28"
TASKS = "io.modelcontextprotocol/tasks"
GW_ISSUER = env("E2E_GW_ISSUER")
MCP_URL = urljoin(GW_ISSUER, "/v1/ai/mcp")
CASE_TIMEOUT = 90


# ---------------------------------------------------------------- the tasks extension (SEP-2663)


class CreateTaskResult(types.Result):
    """`tools/call` answered with a task: a flat `Result & Task`."""

    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    created_at: str | None = None
    last_updated_at: str | None = None
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None


class TaskIdParams(types.RequestParams):
    task_id: str


class GetTaskRequest(types.Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param = "taskId"  # SEP-2663: Mcp-Name mirrors params.taskId


class CancelTaskRequest(types.Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    name_param = "taskId"


class DetailedTask(types.Result):
    """What `tasks/get` answers: the task, and once terminal its result or error."""

    result_type: str | None = None
    task_id: str
    status: str
    status_message: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


async def get_task(session: Any, task_id: str) -> DetailedTask:
    return await session.send_request(GetTaskRequest(params=TaskIdParams(task_id=task_id)), DetailedTask)


class TasksExtension(ClientExtension):
    """A minimal client side of SEP-2663: claim `resultType: "task"` on
    `tools/call` and resolve it by polling `tasks/get` until it is terminal.
    Records what it saw in `created` and `statuses`."""

    identifier = TASKS

    def __init__(self) -> None:
        self.created: list[CreateTaskResult] = []
        self.statuses: list[str] = []

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=self.resolve)]

    async def resolve(self, task: CreateTaskResult, ctx: ClaimContext) -> types.CallToolResult:
        self.created.append(task)
        deadline = time.monotonic() + 30
        while True:
            current = await get_task(ctx.session, task.task_id)
            assert current.task_id == task.task_id, current
            self.statuses.append(current.status)
            if current.status in ("completed", "failed", "cancelled"):
                break
            assert current.result is None, f"no result while {current.status}: {current}"
            assert time.monotonic() < deadline, f"task {task.task_id} still {current.status}"
            await anyio.sleep((task.poll_interval_ms or 200) / 1000)
        assert current.status == "completed", current
        assert current.error is None, current
        assert current.result is not None, current
        return types.CallToolResult.model_validate(current.result)


# ---------------------------------------------------------------- clients


def provider_for(username: str, password: str) -> tuple[OAuthClientProvider, HeadlessOAuth]:
    browser = HeadlessOAuth(username, password)
    provider = OAuthClientProvider(
        server_url=MCP_URL,
        client_metadata=OAuthClientMetadata(
            client_name=f"mcpgate-e2e-py-2026 ({username})",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=MemoryStorage(),
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    return provider, browser


@asynccontextmanager
async def modern(provider: OAuthClientProvider, **options: Any) -> AsyncIterator[Client]:
    """A `Client` on 2026-07-28 (auto mode: discover, no initialize), signing in on the first 401."""
    async with httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30, read=60)) as http:
        async with Client(streamable_http_client(MCP_URL, http_client=http), mode="auto", **options) as client:
            assert client.protocol_version == MODERN, f"negotiated {client.protocol_version}"
            yield client


def text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


USERS: dict[str, tuple[OAuthClientProvider, HeadlessOAuth]] = {}


def user(which: str) -> OAuthClientProvider:
    """The provider of the first (`a`) or second (`b`) gateway user, reused across cases."""
    if which not in USERS:
        if which == "a":
            USERS[which] = provider_for(env("E2E_GW_USER"), env("E2E_GW_PASSWORD"))
        else:
            USERS[which] = provider_for(env("E2E_GW_USER2"), env("E2E_GW_PASSWORD2"))
    return USERS[which][0]


# ---------------------------------------------------------------- the cases


async def case_connect() -> None:
    async with modern(user("a")) as client:
        assert len(USERS["a"][1].auth_urls) == 1, "signed in once, through the SDK's OAuth flow"
        tools = {t.name for t in (await client.list_tools()).tools}
        for want in ("whoami", "test_simple_text", "test_elicitation"):
            assert want in tools, f"tools/list has {want}: {sorted(tools)}"
        who = await client.call_tool("whoami", {})
        assert (who.structured_content or {}).get("user") == env("E2E_GW_USER"), who


async def case_elicitation() -> None:
    asked: list[types.ElicitRequestParams] = []

    async def elicit(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        return types.ElicitResult(action="accept", content={"username": "py-2026", "email": "py@example.com"})

    async with modern(user("a"), elicitation_callback=elicit) as client:
        result = await client.call_tool("test_elicitation", {"message": "Who are you, Python?"})
        assert len(asked) == 1, asked
        assert asked[0].message == "Who are you, Python?", asked[0]
        assert not result.is_error, result
        assert text(result).startswith("User response: action=accept"), result
        assert "py@example.com" in text(result), result


async def case_request_state_isolation() -> None:
    async def never(_ctx: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        raise AssertionError(f"no elicitation may reach the second user: {params}")

    async with modern(user("a"), elicitation_callback=never) as a, modern(user("b"), elicitation_callback=never) as b:
        args = {"message": "Only for the first user"}
        first = await a.session.call_tool("test_elicitation", args, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult), first
        assert first.request_state, first
        assert first.input_requests and len(first.input_requests) == 1, first
        key, embedded = next(iter(first.input_requests.items()))
        assert embedded.method == "elicitation/create", embedded

        bob_answer = {key: types.ElicitResult(action="accept", content={"username": "b", "email": "b@example.com"})}
        try:
            await b.call_tool("test_elicitation", args, input_responses=bob_answer, request_state=first.request_state)
        except MCPError as e:
            assert e.code == types.INVALID_PARAMS, e
        else:
            raise AssertionError("the second user used the first user's requestState")

        mine = {key: types.ElicitResult(action="accept", content={"username": "a", "email": "a-only@example.com"})}
        done = await a.call_tool("test_elicitation", args, input_responses=mine, request_state=first.request_state)
        assert not done.is_error, done
        assert "a-only@example.com" in text(done) and "b@example.com" not in text(done), done


async def case_listen() -> None:
    async with modern(user("a")) as client:
        caps = client.server_capabilities
        assert caps.tools and caps.tools.list_changed, caps
        async with client.listen(tools_list_changed=True) as sub:
            assert sub.honored.tools_list_changed, sub.honored
            fired = await client.call_tool("test_trigger_tool_change", {})
            assert not fired.is_error, fired
            with anyio.fail_after(10):
                event = await sub.__anext__()
            assert isinstance(event, ToolsListChanged), event
        tools = {t.name for t in (await client.list_tools(cache_mode="refresh")).tools}
        assert "test_elicitation" in tools, tools


async def case_task() -> None:
    tasks = TasksExtension()
    async with modern(user("a"), extensions=[tasks]) as a:
        extensions = a.server_capabilities.extensions or {}
        assert TASKS in extensions, a.server_capabilities
        result = await a.call_tool("slow_compute", {"seconds": 2})
        assert len(tasks.created) == 1, "the call created a task"
        created = tasks.created[0]
        assert created.status in ("working", "submitted"), created
        assert created.created_at and created.last_updated_at, created
        assert "working" in tasks.statuses, f"tasks/get saw the task working: {tasks.statuses}"
        assert tasks.statuses[-1] == "completed", tasks.statuses
        assert not result.is_error and result.content, result

        async with modern(user("b"), extensions=[TasksExtension()]) as b:
            try:
                await get_task(b.session, created.task_id)
            except MCPError as e:
                assert e.code == types.INVALID_PARAMS, e
            else:
                raise AssertionError("the second user can see the first user's task")
            try:
                await b.session.send_request(
                    CancelTaskRequest(params=TaskIdParams(task_id=created.task_id)), types.EmptyResult
                )
            except MCPError as e:
                assert e.code == types.INVALID_PARAMS, e
            else:
                raise AssertionError("the second user can cancel the first user's task")
        # The first user still sees it, completed.
        again = await get_task(a.session, created.task_id)
        assert again.status == "completed", again


CASES = [
    ("connect over 2026-07-28 with OAuth (auto: server/discover)", case_connect),
    ("elicitation from a 2025 upstream as an InputRequiredResult", case_elicitation),
    ("requestState is bound to its user", case_request_state_isolation),
    ("subscriptions/listen receives tools/list_changed", case_listen),
    ("a task's whole life; invisible to another user", case_task),
]


async def main() -> int:
    only = sys.argv[1:]
    passed = failed = 0
    for title, run in CASES:
        if only and not any(o in title for o in only):
            continue
        name = f"Python SDK 2026-07-28 via gateway: {title}"
        started = time.monotonic()
        try:
            await asyncio.wait_for(run(), CASE_TIMEOUT)
        except BaseException as e:  # noqa: BLE001 - report every failure, keep going
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            print(f"FAIL - {name} ({time.monotonic() - started:.1f}s)\n  {describe(e)}")
            # The innermost frames: an SDK failure nests several task groups deep.
            print("".join(traceback.format_exception(e))[-6000:])
        else:
            passed += 1
            print(f"ok - {name} ({time.monotonic() - started:.1f}s)")
    print(f"python-2026: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

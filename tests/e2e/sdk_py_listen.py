"""The official Python SDK (PyPI `mcp` 2.x, pinned in requirements.txt) on
MCP 2026-07-28 through the gateway: after the OAuth flow the high-level
`Client` negotiates the modern revision (`mode="auto"`: `server/discover`,
then stateless requests), opens a `subscriptions/listen` stream for tool list
changes, calls the conformance fixture's `test_trigger_tool_change` (an
upstream on a 2025 revision, prefix ""), and receives the
`notifications/tools/list_changed` the gateway delivers on the stream.

Run by tests/e2e/run.sh after sdk_py_test.py (whose OAuth helpers it uses),
with E2E_GW_ISSUER, E2E_GW_USER, E2E_GW_PASSWORD. Prints `ok`/`FAIL` and
`python: N passed, N failed` like sdk_py_test.py.
"""

from __future__ import annotations

import asyncio
import sys
import time
import traceback
from urllib.parse import urljoin

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ToolsListChanged
from mcp.shared.auth import OAuthClientMetadata

from sdk_py_test import REDIRECT_URI, HeadlessOAuth, MemoryStorage, describe, env

NAME = "Python SDK, gateway on 2026-07-28: a listen stream receives an upstream's tools/list_changed"


async def case() -> None:
    url = urljoin(env("E2E_GW_ISSUER"), "/v1/ai/mcp")
    browser = HeadlessOAuth(env("E2E_GW_USER"), env("E2E_GW_PASSWORD"))
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="mcpgate-e2e-py (gateway listen)",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=MemoryStorage(),
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30, read=60)) as http:
        async with Client(streamable_http_client(url, http_client=http), mode="auto") as client:
            async with client.listen(tools_list_changed=True) as sub:
                assert sub.honored.tools_list_changed, sub.honored
                result = await client.call_tool("test_trigger_tool_change", {})
                assert not result.is_error, result
                event = await asyncio.wait_for(sub.__anext__(), 10)
                assert isinstance(event, ToolsListChanged), event
            assert len(browser.auth_urls) == 1, browser.auth_urls


async def main() -> int:
    started = time.monotonic()
    try:
        await asyncio.wait_for(case(), 60)
    except BaseException as e:  # noqa: BLE001 - report the failure
        if isinstance(e, KeyboardInterrupt):
            raise
        print(f"FAIL - {NAME} ({time.monotonic() - started:.1f}s)\n  {describe(e)}")
        traceback.print_exception(e, file=sys.stdout)
        print("python: 0 passed, 1 failed")
        return 1
    print(f"ok - {NAME} ({time.monotonic() - started:.1f}s)")
    print("python: 1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""URL-mode elicitation (MCP 2025-11-25) end to end with the official Python
SDK (PyPI `mcp`, pinned in requirements.txt), a real client that declares
`elicitation.url`.

The script starts two mcpgate servers of its own (the binary of
E2E_MCPGATE, default target/debug/mcpgate), each in a fresh temporary
directory on a free loopback port:

- "b", the upstream: a plain mcpgate with its own authorization server
  (dynamic registration) and the user alice-at-b;
- "a", the gateway: `[[upstream]] b` with `auth = "oauth"`, and the user
  alice.

Then, with the SDK: OAuth sign-in at a (the SDK's OAuthClientProvider, the
forms posted headless), initialize (the SDK declares `elicitation.url`
when given an elicitation callback), tools/list has `b_connect` and no
`b_whoami`; tools/call `b_connect`: the SDK's callback receives
`elicitation/create` with mode "url" and the connect link, answers
`accept` and, like a user in a browser, opens the link (signs in at a as
alice, at b as alice-at-b, approves). The session then receives
`notifications/elicitation/complete` with the same elicitationId and
`notifications/tools/list_changed`; tools/list has `b_whoami`, whose call
reaches b as alice-at-b.

Prints `ok`/`FAIL` and `python: N passed, N failed`; non-zero exit on
failure. Run: tests/e2e/.venv/bin/python tests/e2e/sdk_py_elicitation.py
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from urllib.parse import urljoin

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MCPGATE = os.environ.get("E2E_MCPGATE", str(ROOT / "target" / "debug" / "mcpgate"))
PASSWORD = "elicitation-e2e-" + os.urandom(6).hex()
TIMEOUT = 90


class Server:
    """`mcpgate serve` in its own directory, with `users` added first."""

    def __init__(self, name: str, config: str, users: list[str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"mcpgate-elicit-{name}-"))
        (self.dir / "mcpgate.toml").write_text(config)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MCPGATE_")}
        for user in users:
            subprocess.run(
                [MCPGATE, "user", "add", user, "--password-stdin"],
                input=PASSWORD + "\n", text=True, cwd=self.dir, env=env, check=True,
                stdout=subprocess.DEVNULL,
            )
        self.out = open(self.dir / "server.out", "w+")
        self.proc = subprocess.Popen(
            [MCPGATE, "serve", "--listen", "127.0.0.1:0"],
            cwd=self.dir, env=env, stdout=self.out, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = (self.dir / "server.out").read_text()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            if m and "Press Ctrl-C to stop." in text:
                self.port = int(m.group(1))
                # The public URL of a server on a loopback address without public_url.
                self.issuer = f"http://localhost:{self.port}"
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise SystemExit(f"mcpgate {name} did not start:\n{(self.dir / 'server.out').read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.out.close()
        if not os.environ.get("KEEP_E2E_WORK"):
            shutil.rmtree(self.dir, ignore_errors=True)


async def case(a: Server, b: Server) -> None:
    # The SDK helpers of sdk_py_test.py read the issuer at import.
    os.environ["E2E_ISSUER"] = a.issuer
    sys.path.insert(0, str(HERE))
    import httpx2
    import mcp_types as types
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import OAuthClientMetadata
    from sdk_py_test import REDIRECT_URI, Browser, HeadlessOAuth, MemoryStorage, parse_form, submit

    server_url = urljoin(a.issuer, "/v1/ai/mcp")
    provider = OAuthClientProvider(
        server_url=server_url,
        client_metadata=OAuthClientMetadata(
            client_name="mcpgate-e2e-py (URL elicitation)",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=MemoryStorage(),
        redirect_handler=(oauth := HeadlessOAuth("alice", PASSWORD)).redirect_handler,
        callback_handler=oauth.callback_handler,
    )

    async def open_in_browser(link: str) -> None:
        """What the user does with the link: sign in at a, then at b, approve."""
        async with httpx2.AsyncClient(timeout=20) as http:
            at_a, at_b = Browser(http), Browser(http)
            res = await at_a.request("GET", link)
            assert res.status_code == 200, f"GET {link} -> {res.status_code}: {res.text[:500]}"
            res = await submit(at_a, parse_form(res.text, link), {"username": "alice", "password": PASSWORD}, link)
            assert res.status_code == 303, f"sign-in at a -> {res.status_code}"
            url = urljoin(link, res.headers["location"])
            res = await at_a.request("GET", url)
            assert res.status_code == 302, f"GET {url} -> {res.status_code}: {res.text[:500]}"
            authorize = res.headers["location"]
            assert authorize.startswith(b.issuer), authorize
            res = await at_b.request("GET", authorize)
            assert res.status_code == 200, f"b's sign-in page: {res.status_code}"
            res = await submit(at_b, parse_form(res.text, authorize), {"username": "alice-at-b", "password": PASSWORD}, authorize)
            url = urljoin(authorize, res.headers["location"])
            res = await at_b.request("GET", url)
            assert res.status_code == 200, f"b's consent page: {res.status_code}"
            res = await submit(at_b, parse_form(res.text, url), {"decision": "approve"}, url)
            callback = res.headers["location"]
            assert callback.startswith(f"{a.issuer}/oauth/upstream/callback?"), callback
            res = await at_a.request("GET", callback)
            assert res.status_code == 200 and "Connected to b" in res.text, f"callback: {res.status_code} {res.text[:500]}"

    elicitations: list[types.ElicitRequestURLParams] = []
    browser_tasks: list[asyncio.Task] = []
    completed = asyncio.Event()
    tools_changed = asyncio.Event()
    completions: list[str] = []

    async def on_elicitation(ctx, params):
        assert isinstance(params, types.ElicitRequestURLParams), f"not URL mode: {params!r}"
        elicitations.append(params)
        browser_tasks.append(asyncio.create_task(open_in_browser(params.url)))
        return types.ElicitResult(action="accept")

    async def on_message(message) -> None:
        if isinstance(message, types.ElicitCompleteNotification):
            completions.append(message.params.elicitation_id)
            completed.set()
        elif isinstance(message, types.ToolListChangedNotification):
            if completed.is_set():
                tools_changed.set()

    async with httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30, read=60)) as http:
        async with streamable_http_client(server_url, http_client=http) as (read, write):
            async with ClientSession(read, write, elicitation_callback=on_elicitation, message_handler=on_message) as session:
                init = await session.initialize()
                assert init.protocol_version == "2025-11-25", init.protocol_version
                names = {t.name for t in (await session.list_tools()).tools}
                assert "b_connect" in names and "b_whoami" not in names, names

                result = await session.call_tool("b_connect", {})
                assert not result.is_error, result
                assert len(elicitations) == 1, elicitations
                ask = elicitations[0]
                assert ask.url.startswith(f"{a.issuer}/connect/b?ticket="), ask.url
                assert ask.elicitation_id, ask
                text = result.model_dump_json()
                assert "ticket=" not in text, f"the link stays out of the result: {text}"

                await asyncio.wait_for(browser_tasks[0], 30)
                await asyncio.wait_for(completed.wait(), 15)
                assert completions == [ask.elicitation_id], completions
                await asyncio.wait_for(tools_changed.wait(), 15)

                names = {t.name for t in (await session.list_tools()).tools}
                assert "b_whoami" in names and "b_connect" not in names, names
                who = await session.call_tool("b_whoami", {})
                assert not who.is_error, who
                assert (who.structured_content or {}).get("user") == "alice-at-b", who


async def main() -> int:
    b = Server("b", "client_id_metadata_documents = false\n", ["alice-at-b"])
    a = None
    try:
        a = Server(
            "a",
            f'[[upstream]]\nname = "b"\nurl = "{b.issuer}/v1/ai/mcp"\nauth = "oauth"\nisolation = "per_user"\n',
            ["alice"],
        )
        name = "Python SDK, URL-mode elicitation: b_connect, browser flow, elicitation/complete, b's tools"
        started = time.monotonic()
        try:
            await asyncio.wait_for(case(a, b), TIMEOUT)
        except BaseException as e:  # noqa: BLE001 - report the failure
            if isinstance(e, KeyboardInterrupt):
                raise
            print(f"FAIL - {name} ({time.monotonic() - started:.1f}s)")
            traceback.print_exception(e, file=sys.stdout)
            print("python: 0 passed, 1 failed")
            return 1
        print(f"ok - {name} ({time.monotonic() - started:.1f}s)")
        print("python: 1 passed, 0 failed")
        return 0
    finally:
        if a:
            a.stop()
        b.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

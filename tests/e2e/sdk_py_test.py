"""The official Python SDK (PyPI `mcp`, pinned in requirements.txt) against a
running mcpgate: discovery, dynamic registration, PKCE, sign-in and consent
(by posting mcpgate's HTML forms), token exchange, initialize, tools/list,
tools/call whoami, and a refresh, over Streamable HTTP and the legacy SSE
transport.

A plain script (no test framework): run through tests/e2e/run.sh, which sets
E2E_ISSUER, E2E_USER, E2E_PASSWORD and E2E_ADMIN_PASSWORD. It
prints one `ok`/`FAIL` line per case and closes with `python: N passed, N failed`;
the exit code is non-zero when a case failed.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import sys
import time
import traceback
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

REDIRECT_URI = "http://127.0.0.1:1/callback"  # never contacted
CASE_TIMEOUT = 60


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set (run the suite through tests/e2e/run.sh)")
    return value


ISSUER = env("E2E_ISSUER")


class MemoryStorage:
    """TokenStorage kept in memory; records every token set saved."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None
        self.saved: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.saved.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


# ---------------------------------------------------------------- HTML forms

ATTR = re.compile(r"""([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""")


def attributes(tag: str) -> dict[str, str]:
    inner = re.sub(r"^<\s*[a-zA-Z]+", "", tag)
    inner = re.sub(r"/?>$", "", inner)
    out = {}
    for m in ATTR.finditer(inner):
        out[m.group(1).lower()] = html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
    return out


def parse_form(page: str, url: str) -> dict:
    forms = re.findall(r"<form\b.*?</form>", page, flags=re.S | re.I)
    if len(forms) != 1:
        raise AssertionError(f"expected exactly one <form> on {url}, found {len(forms)}:\n{page[:2000]}")
    form = forms[0]
    attrs = attributes(re.search(r"<form\b[^>]*>", form, flags=re.I).group(0))
    return {
        "action": urljoin(url, attrs.get("action", "")),
        "method": attrs.get("method", "get").upper(),
        "inputs": [attributes(t) for t in re.findall(r"<input\b[^>]*>", form, flags=re.I)],
        "buttons": [attributes(t) for t in re.findall(r"<button\b[^>]*>", form, flags=re.I)],
    }


class Browser:
    """httpx2 with a hand-kept cookie jar and no automatic redirects."""

    def __init__(self, client: httpx2.AsyncClient) -> None:
        self.client = client
        self.cookies: dict[str, str] = {}

    async def request(self, method: str, url: str, **kw) -> httpx2.Response:
        headers = dict(kw.pop("headers", {}))
        if self.cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        res = await self.client.request(method, url, headers=headers, follow_redirects=False, **kw)
        for c in res.headers.get_list("set-cookie"):
            name, _, rest = c.partition("=")
            value = rest.split(";", 1)[0].strip()
            if value == "" or re.search(r"max-age=0\b", c, flags=re.I):
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value
        return res


async def submit(browser: Browser, form: dict, values: dict[str, str], page_url: str) -> httpx2.Response:
    assert form["method"] == "POST", f"form on {page_url} uses {form['method']}"
    body: list[tuple[str, str]] = []
    for i in form["inputs"]:
        name = i.get("name")
        kind = i.get("type", "text").lower()
        if not name or kind in ("submit", "button"):
            continue
        if kind in ("checkbox", "radio") and "checked" not in i:
            continue
        body.append((name, values.get(name, i.get("value", ""))))
    names = {n for n, _ in body}
    body += [(k, v) for k, v in values.items() if k not in names]
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page_url))
    return await browser.request("POST", form["action"], data=dict(body), headers={"origin": origin})


async def drive_login(auth_url: str, username: str, password: str) -> dict[str, str]:
    """Sign in and approve; returns the query of the redirect back to REDIRECT_URI."""
    async with httpx2.AsyncClient(timeout=20) as client:
        browser = Browser(client)
        url = auth_url
        res = await browser.request("GET", url)
        assert res.status_code == 200, f"GET {url} -> {res.status_code}: {res.text}"
        login = parse_form(res.text, url)
        names = [i.get("name") for i in login["inputs"]]
        assert "username" in names and "password" in names, f"not a login form: {names}"
        res = await submit(browser, login, {"username": username, "password": password}, url)
        assert res.status_code in (302, 303), f"POST login -> {res.status_code}: {res.text}"
        for _ in range(6):
            url = urljoin(url, res.headers["location"])
            if url.startswith(REDIRECT_URI):
                return finish(url)
            res = await browser.request("GET", url)
            if res.status_code == 200:
                break
            assert res.status_code in (302, 303), f"GET {url} -> {res.status_code}: {res.text}"
        else:
            raise AssertionError("too many redirects after login")
        consent = parse_form(res.text, url)
        assert any(
            b.get("name") == "decision" and b.get("value") == "approve" for b in consent["buttons"]
        ), f'no <button name="decision" value="approve">:\n{res.text[:2000]}'
        res = await submit(browser, consent, {"decision": "approve"}, url)
        assert res.status_code in (302, 303), f"POST consent -> {res.status_code}: {res.text}"
        return finish(urljoin(url, res.headers["location"]))


def finish(url: str) -> dict[str, str]:
    assert url.startswith(REDIRECT_URI), f"redirected to {url}, expected {REDIRECT_URI}"
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert params.get("code"), f"no code in {url}"
    return params


class HeadlessOAuth:
    """The redirect and callback handlers the SDK calls in the middle of its flow."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.auth_urls: list[str] = []

    async def redirect_handler(self, url: str) -> None:
        self.auth_urls.append(url)

    async def callback_handler(self) -> AuthorizationCodeResult:
        params = await drive_login(self.auth_urls[-1], self.username, self.password)
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))


# ---------------------------------------------------------------- the cases


async def exercise(session: ClientSession, username: str) -> None:
    init = await session.initialize()
    assert init.server_info.name, init
    assert init.capabilities.tools is not None, init
    tools = sorted(t.name for t in (await session.list_tools()).tools)
    for want in ("current_time", "echo", "whoami"):
        assert want in tools, f"tools/list has {want}: {tools}"
    who = await session.call_tool("whoami", {})
    assert not who.is_error, who
    assert (who.structured_content or {}).get("user") == username, who
    echo = await session.call_tool("echo", {"text": "héllo e2e"})
    assert not echo.is_error, echo
    assert "héllo e2e" in echo.model_dump_json(), echo


async def case(transport: str, path: str, username: str, password: str) -> None:
    server_url = urljoin(ISSUER, path)
    storage = MemoryStorage()
    browser = HeadlessOAuth(username, password)
    provider = OAuthClientProvider(
        server_url=server_url,
        client_metadata=OAuthClientMetadata(
            client_name=f"mcpgate-e2e-py ({transport} {path})",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )

    async def session_round(check) -> None:
        if transport == "streamable":
            async with httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30, read=60)) as http:
                async with streamable_http_client(server_url, http_client=http) as (read, write):
                    async with ClientSession(read, write) as session:
                        await check(session)
        else:
            async with sse_client(server_url, auth=provider, timeout=30, sse_read_timeout=60) as (read, write):
                async with ClientSession(read, write) as session:
                    await check(session)

    # 1. Full flow inside the first connection: 401, discovery, DCR, PKCE,
    #    sign-in + consent through the callback handler, token exchange.
    await session_round(lambda s: exercise(s, username))
    assert len(browser.auth_urls) == 1, f"sign-ins: {browser.auth_urls}"
    assert storage.client_info and storage.client_info.client_id, "registered through DCR"
    assert len(storage.saved) == 1, storage.saved
    first = storage.saved[0]
    assert first.access_token and first.refresh_token, first
    assert "code_challenge_method=S256" in browser.auth_urls[0]

    # 2. Refresh: the Python SDK refreshes when its token has expired. Spoil
    #    the access token and mark it expired: the SDK must use the refresh
    #    token (no new sign-in), the server rotates it, and calls work again.
    provider.context.current_tokens = first.model_copy(update={"access_token": "spoiled-" + first.access_token})
    provider.context.token_expiry_time = time.time() - 1
    await session_round(lambda s: exercise(s, username))
    assert len(browser.auth_urls) == 1, "no second sign-in: the SDK refreshed"
    assert len(storage.saved) == 2, storage.saved
    second = storage.saved[1]
    assert second.access_token != first.access_token
    assert second.refresh_token and second.refresh_token != first.refresh_token, "refresh token rotated"


CASES = [
    ("Streamable HTTP", "streamable", "/v1/ai/mcp", "user"),
    ("legacy SSE /sse", "sse", "/sse", "admin"),
    ("legacy SSE /v1/ai/mcp/sse", "sse", "/v1/ai/mcp/sse", "admin"),
]


def describe(e: BaseException) -> str:
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(describe(x) for x in e.exceptions)
    return f"{type(e).__name__}: {e}"


async def main() -> int:
    only = sys.argv[1:]
    passed = failed = 0
    for title, transport, path, who in CASES:
        if only and not any(o in title for o in only):
            continue
        if who == "admin":
            username, password = "admin", env("E2E_ADMIN_PASSWORD")
        else:
            username, password = env("E2E_USER"), env("E2E_PASSWORD")
        name = f"Python SDK, {title}: OAuth, initialize, tools, refresh"
        started = time.monotonic()
        try:
            with_timeout = asyncio.wait_for(case(transport, path, username, password), CASE_TIMEOUT)
            await with_timeout
        except BaseException as e:  # noqa: BLE001 - report every failure, keep going
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            print(f"FAIL - {name} ({time.monotonic() - started:.1f}s)\n  {describe(e)}")
            traceback.print_exception(e, file=sys.stdout)
        else:
            passed += 1
            print(f"ok - {name} ({time.monotonic() - started:.1f}s)")
    print(f"python: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

// The official TypeScript SDK (@modelcontextprotocol/sdk) against a running
// mcpgate: discovery, dynamic registration, PKCE, sign-in and consent, token
// exchange, initialize, tools/list, tools/call whoami, and a refresh after the
// access token is spoiled, over Streamable HTTP and over the legacy SSE transport;
// then Streamable HTTP again against a server with native TLS (tls_cert_file;
// Node trusts the run's test CA through NODE_EXTRA_CA_CERTS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { MemoryOAuthProvider, driveLogin, env } from './lib/oauth.mjs';

const ISSUER = env('E2E_ISSUER');

const transports = {
  'Streamable HTTP': {
    url: new URL('/v1/ai/mcp', ISSUER),
    make: (url, authProvider) => new StreamableHTTPClientTransport(url, { authProvider }),
    user: () => [env('E2E_USER'), env('E2E_PASSWORD')],
  },
  'legacy SSE /sse': {
    url: new URL('/sse', ISSUER),
    make: (url, authProvider) => new SSEClientTransport(url, { authProvider }),
    user: () => ['admin', env('E2E_ADMIN_PASSWORD')],
  },
  'legacy SSE /v1/ai/mcp/sse': {
    url: new URL('/v1/ai/mcp/sse', ISSUER),
    make: (url, authProvider) => new SSEClientTransport(url, { authProvider }),
    user: () => [env('E2E_USER'), env('E2E_PASSWORD')],
  },
  'Streamable HTTP, native TLS': {
    issuer: env('E2E_TLS_ISSUER'),
    url: new URL('/v1/ai/mcp', env('E2E_TLS_ISSUER')),
    make: (url, authProvider) => new StreamableHTTPClientTransport(url, { authProvider }),
    user: () => ['admin', env('E2E_TLS_ADMIN_PASSWORD')],
  },
};

for (const [name, t] of Object.entries(transports)) {
  test(`TypeScript SDK, ${name}: OAuth, initialize, tools, refresh`, { timeout: 60_000 }, async () => {
    const [username, password] = t.user();
    const issuer = t.issuer ?? ISSUER;
    if (t.issuer) assert.ok(issuer.startsWith('https://'), issuer);
    const provider = new MemoryOAuthProvider(`mcpgate-e2e-ts (${name})`);

    // 1. First connect: the SDK gets a 401, discovers the protected resource and
    //    the authorization server, registers a client and asks for a redirect.
    let client = new Client({ name: 'mcpgate-e2e-ts', version: '0.0.0' });
    let transport = t.make(t.url, provider);
    await assert.rejects(client.connect(transport), (e) => {
      assert.ok(e instanceof UnauthorizedError, `expected UnauthorizedError, got ${e?.stack ?? e}`);
      return true;
    });
    await client.close().catch(() => {});
    const info = provider.clientInformation();
    assert.ok(info?.client_id, 'the SDK registered a client (DCR)');
    const authUrl = provider.pendingAuthUrl;
    assert.ok(authUrl, 'the SDK asked to open the authorization URL');
    assert.equal(authUrl.origin, new URL(issuer).origin);
    assert.equal(authUrl.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authUrl.searchParams.get('client_id'), info.client_id);
    // RFC 8707: the resource is the one whose metadata the 401 named: the
    // MCP endpoint, or the legacy /sse endpoint (a resource of its own).
    const expectedResource = t.url.pathname === '/sse' ? new URL('/sse', issuer).href : new URL('/v1/ai/mcp', issuer).href;
    assert.equal(authUrl.searchParams.get('resource'), expectedResource);

    // 2. The "browser": sign in, approve, come back with a code.
    const back = await driveLogin(authUrl, username, password);
    assert.equal(back.state, authUrl.searchParams.get('state'));
    assert.equal(back.iss, issuer, 'RFC 9207 iss on the authorization response');

    // 3. Token exchange (PKCE verifier) by the SDK.
    await transport.finishAuth(back.code);
    const first = provider.tokens();
    assert.ok(first?.access_token, 'access token saved');
    assert.ok(first?.refresh_token, 'refresh token saved');
    assert.equal(first.token_type.toLowerCase(), 'bearer');

    // 4. A new Client and transport, now authorized.
    client = new Client({ name: 'mcpgate-e2e-ts', version: '0.0.0' });
    transport = t.make(t.url, provider);
    await client.connect(transport);
    try {
      assert.ok(client.getServerVersion()?.name, 'serverInfo.name');
      assert.ok(client.getServerCapabilities()?.tools, 'tools capability');
      if (transport.protocolVersion !== undefined) {
        assert.equal(transport.protocolVersion, LATEST_PROTOCOL_VERSION);
      }

      const { tools } = await client.listTools();
      const names = tools.map((x) => x.name).sort();
      for (const want of ['current_time', 'echo', 'whoami']) assert.ok(names.includes(want), `tools/list has ${want}: ${names}`);

      const who = await client.callTool({ name: 'whoami', arguments: {} });
      assert.ok(!who.isError, JSON.stringify(who));
      assert.equal(who.structuredContent?.user, username, JSON.stringify(who));

      const echo = await client.callTool({ name: 'echo', arguments: { text: 'héllo e2e' } });
      assert.ok(!echo.isError, JSON.stringify(echo));
      assert.ok(JSON.stringify(echo.content).includes('héllo e2e'), JSON.stringify(echo));

      // 5. Spoil the access token: the next request gets a 401 and the SDK
      //    refreshes on its own (refresh tokens rotate), then retries.
      provider._tokens = { ...first, access_token: 'spoiled-' + first.access_token };
      const before = provider.savedTokens.length;
      const again = await client.callTool({ name: 'whoami', arguments: {} });
      assert.equal(again.structuredContent?.user, username, JSON.stringify(again));
      assert.equal(provider.savedTokens.length, before + 1, 'the SDK saved refreshed tokens');
      const second = provider.tokens();
      assert.notEqual(second.access_token, first.access_token, 'new access token');
      assert.ok(second.refresh_token, 'refresh response carries a refresh token');
      assert.notEqual(second.refresh_token, first.refresh_token, 'refresh token rotated');
      await client.ping();
    } finally {
      await client.close();
    }
  });
}

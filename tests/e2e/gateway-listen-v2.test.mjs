// MCP 2026-07-28 through the gateway with the official TypeScript SDK v2
// client (@modelcontextprotocol/client 2.x): after the OAuth flow it
// negotiates the modern revision (`versionNegotiation: { mode: 'auto' }`:
// `server/discover`, then stateless requests), opens a `subscriptions/listen`
// stream for tool list changes, and calls the conformance fixture's
// `test_trigger_tool_change` (an upstream on a 2025 revision, prefix ""),
// whose `notifications/tools/list_changed` the gateway delivers on the
// stream (and nothing the filter did not ask for); the tool list changed.
//
// Environment (set by run.sh): E2E_GW_ISSUER, E2E_GW_USER, E2E_GW_PASSWORD.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import { MemoryOAuthProvider, driveLogin, env } from './lib/oauth.mjs';

const modern = { versionNegotiation: { mode: 'auto' } };

test('gateway, SDK v2 on 2026-07-28: a listen stream receives tools/list_changed from an upstream', { timeout: 60_000 }, async () => {
  const url = new URL('/v1/ai/mcp', env('E2E_GW_ISSUER'));
  const provider = new MemoryOAuthProvider('mcpgate-e2e-sdk-v2 (gateway listen)');

  let client = new Client({ name: 'mcpgate-e2e-sdk-v2', version: '0.0.0' }, modern);
  let transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await assert.rejects(client.connect(transport), (e) => {
    assert.ok(e instanceof UnauthorizedError, `expected UnauthorizedError, got ${e?.stack ?? e}`);
    return true;
  });
  await client.close().catch(() => {});
  const back = await driveLogin(provider.pendingAuthUrl, env('E2E_GW_USER'), env('E2E_GW_PASSWORD'));
  await transport.finishAuth(back.url.searchParams);

  client = new Client({ name: 'mcpgate-e2e-sdk-v2', version: '0.0.0' }, modern);
  transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await client.connect(transport);
  try {
    assert.equal(client.getProtocolEra(), 'modern', 'the client negotiated 2026-07-28');
    const heard = [];
    let changed;
    const toolsChanged = new Promise((resolve) => { changed = resolve; });
    client.setNotificationHandler('notifications/tools/list_changed', (n) => { heard.push(n.method); changed(); });
    client.setNotificationHandler('notifications/prompts/list_changed', (n) => { heard.push(n.method); });

    const sub = await client.listen({ toolsListChanged: true });
    assert.equal(sub.honoredFilter.toolsListChanged, true, JSON.stringify(sub.honoredFilter));
    const before = (await client.listTools()).tools.map((t) => t.name);

    const r = await client.callTool({ name: 'test_trigger_tool_change', arguments: {} });
    assert.ok(!r.isError, JSON.stringify(r));
    await Promise.race([
      toolsChanged,
      new Promise((_, reject) => setTimeout(() => reject(new Error('no tools/list_changed within 10 s')), 10_000)),
    ]);
    const after = (await client.listTools()).tools.map((t) => t.name);
    assert.notEqual(after.includes('test_dynamic_tool'), before.includes('test_dynamic_tool'), 'the list changed');
    assert.deepEqual(heard, ['notifications/tools/list_changed'], 'only what the filter asked for');
    await sub.close();
    assert.equal(await sub.closed, 'local');
  } finally {
    await client.close();
  }
});

// A real third-party upstream behind mcpgate's gateway: the reference
// "everything" server (npm @modelcontextprotocol/server-everything, stdio,
// run by Node 22), configured by run.sh as `[[upstream]] name = "everything"`
// (so its tools and prompts are `everything_<name>`) on the gateway server,
// next to the conformance fixtures (prefix ""). The official TypeScript SDK
// does the whole OAuth flow, then uses the upstream's tools (echo, get-sum,
// a long-running operation that reports progress), a resource and prompts.
//
// Environment (set by run.sh): E2E_GW_ISSUER, E2E_GW_USER, E2E_GW_PASSWORD.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { MemoryOAuthProvider, driveLogin, env } from './lib/oauth.mjs';

const text = (result) => (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');

test('gateway: server-everything upstream through mcpgate, TypeScript SDK', { timeout: 60_000 }, async () => {
  const issuer = env('E2E_GW_ISSUER');
  const url = new URL('/v1/ai/mcp', issuer);
  const provider = new MemoryOAuthProvider('mcpgate-e2e-ts (gateway)');

  // OAuth: 401 -> discovery -> registration -> sign-in and consent -> token.
  let client = new Client({ name: 'mcpgate-e2e-ts', version: '0.0.0' });
  let transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await assert.rejects(client.connect(transport), (e) => {
    assert.ok(e instanceof UnauthorizedError, `expected UnauthorizedError, got ${e?.stack ?? e}`);
    return true;
  });
  await client.close().catch(() => {});
  assert.ok(provider.pendingAuthUrl, 'the SDK asked to open the authorization URL');
  const back = await driveLogin(provider.pendingAuthUrl, env('E2E_GW_USER'), env('E2E_GW_PASSWORD'));
  await transport.finishAuth(back.code);
  assert.ok(provider.tokens()?.access_token, 'access token saved');

  client = new Client({ name: 'mcpgate-e2e-ts', version: '0.0.0' });
  transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
  await client.connect(transport);
  try {
    const caps = client.getServerCapabilities();
    for (const c of ['tools', 'resources', 'prompts']) assert.ok(caps?.[c], `capability ${c}`);

    // Tools: built-ins, the conformance fixtures (no prefix), everything_*.
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    for (const want of ['whoami', 'echo', 'test_simple_text', 'everything_echo', 'everything_get-sum', 'everything_trigger-long-running-operation']) {
      assert.ok(names.includes(want), `tools/list has ${want}: ${names.join(', ')}`);
    }
    assert.ok(!names.includes('get-sum'), 'the upstream\'s own names are not exposed unprefixed');

    const echo = await client.callTool({ name: 'everything_echo', arguments: { message: 'héllo gateway' } });
    assert.ok(!echo.isError, JSON.stringify(echo));
    assert.equal(text(echo), 'Echo: héllo gateway');

    const sum = await client.callTool({ name: 'everything_get-sum', arguments: { a: 2, b: 40 } });
    assert.ok(!sum.isError, JSON.stringify(sum));
    assert.match(text(sum), /\b42\b/);

    // Progress: the upstream reports each step to the gateway, which passes
    // it on with the client's own progress token.
    const progress = [];
    const long = await client.callTool(
      { name: 'everything_trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } },
      undefined,
      { onprogress: (p) => progress.push(p) },
    );
    assert.ok(!long.isError, JSON.stringify(long));
    assert.match(text(long), /Long running operation completed/);
    assert.ok(progress.length >= 1, 'at least one progress notification arrived');
    assert.deepEqual(progress.map((p) => p.progress), [1, 2, 3], JSON.stringify(progress));
    assert.ok(progress.every((p) => p.total === 3), JSON.stringify(progress));

    // Resources: URIs are not renamed; the list merges both upstreams.
    const { resources } = await client.listResources();
    const uris = resources.map((r) => r.uri);
    assert.ok(uris.includes('test://static-text'), `the conformance fixture's resource is listed: ${uris.join(', ')}`);
    const doc = resources.find((r) => r.uri.startsWith('demo://resource/static/document/'));
    assert.ok(doc, `server-everything lists its documents: ${uris.join(', ')}`);
    const read = await client.readResource({ uri: doc.uri });
    assert.equal(read.contents.length, 1, JSON.stringify(read));
    assert.equal(read.contents[0].uri, doc.uri);
    assert.ok(read.contents[0].text?.length > 0, 'the document has text');
    const dynamic = await client.readResource({ uri: 'demo://resource/dynamic/text/7' });
    assert.match(dynamic.contents[0].text, /^Resource 7: /, JSON.stringify(dynamic));

    // Prompts: everything_<name>; arguments and completion reach the upstream.
    const { prompts } = await client.listPrompts();
    const promptNames = prompts.map((p) => p.name);
    for (const want of ['everything_simple-prompt', 'everything_args-prompt', 'test_simple_prompt']) {
      assert.ok(promptNames.includes(want), `prompts/list has ${want}: ${promptNames.join(', ')}`);
    }
    const simple = await client.getPrompt({ name: 'everything_simple-prompt' });
    assert.equal(simple.messages[0]?.content?.text, 'This is a simple prompt without arguments.');
    const args = await client.getPrompt({ name: 'everything_args-prompt', arguments: { city: 'Paris', state: 'Texas' } });
    assert.equal(args.messages[0]?.content?.text, "What's weather in Paris, Texas?");
    const completion = await client.complete({
      ref: { type: 'ref/prompt', name: 'everything_completable-prompt' },
      argument: { name: 'department', value: 'Eng' },
    });
    assert.deepEqual(completion.completion.values, ['Engineering']);
  } finally {
    await client.close();
  }
});

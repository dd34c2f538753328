// Requests an upstream makes while serving a tool call (sampling/createMessage,
// elicitation/create) must reach the client as part of that call: over
// Streamable HTTP, on the call's own SSE response stream. A client that
// never opens the standalone GET stream (the spec lets it) sees nothing
// else. This client speaks raw Streamable HTTP, POST only, to the gateway
// server of run.sh, whose upstream `mcpgate-fixture-upstream --conformance`
// (prefix "") has the tools test_sampling, test_elicitation and
// test_tool_with_progress.
//
// Environment (set by run.sh): E2E_GW_ISSUER, E2E_GW_USER, E2E_GW_PASSWORD.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, obtainToken } from './lib/oauth.mjs';

const STREAM_TIMEOUT_MS = 10_000;

/** A POST-only MCP client: initialize, then one request at a time. */
async function connect(url, token) {
  const base = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const init = await fetch(url, {
    method: 'POST',
    headers: base,
    body: JSON.stringify({
      jsonrpc: '2.0', id: 0, method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: { sampling: {}, elicitation: {} }, clientInfo: { name: 'mcpgate-e2e-post-only', version: '0.0.0' } },
    }),
  });
  assert.equal(init.status, 200, await init.clone().text());
  const session = init.headers.get('mcp-session-id');
  assert.ok(session, 'Mcp-Session-Id on the initialize response');
  await init.text();
  const headers = { ...base, 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' };
  const post = (message) => fetch(url, { method: 'POST', headers, body: JSON.stringify(message) });
  const ack = await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
  assert.equal(ack.status, 202);
  await ack.arrayBuffer();

  /**
   * Sends request `id` and reads its SSE stream until its response; every
   * request from the server on that stream is answered with `answer(msg)`.
   * Resolves to { response, requests, notifications } (the messages seen on
   * this stream).
   */
  async function call(id, method, params, answer) {
    const res = await post({ jsonrpc: '2.0', id, method, params });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/, 'the call is answered with an SSE stream');
    const seen = { requests: [], notifications: [], response: undefined };
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const timer = setTimeout(() => reader.cancel(), STREAM_TIMEOUT_MS);
    let buffer = '';
    try {
      while (!seen.response) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
          if (!data.trim()) continue; // priming event
          const msg = JSON.parse(data);
          if (msg.method && msg.id !== undefined) {
            seen.requests.push(msg);
            const reply = await post({ jsonrpc: '2.0', id: msg.id, result: answer(msg) });
            assert.equal(reply.status, 202);
            await reply.arrayBuffer();
          } else if (msg.method) {
            seen.notifications.push(msg);
          } else if (msg.id === id) {
            seen.response = msg;
          }
        }
      }
    } finally {
      clearTimeout(timer);
      await reader.cancel().catch(() => {});
    }
    return seen;
  }
  return { call, close: () => fetch(url, { method: 'DELETE', headers }).then((r) => r.arrayBuffer()) };
}

test('gateway: upstream requests and progress ride the tool call\'s own stream (POST-only client)', { timeout: 60_000 }, async () => {
  const issuer = env('E2E_GW_ISSUER');
  const url = new URL('/v1/ai/mcp', issuer).href;
  const token = await obtainToken({ issuer, resource: url, username: env('E2E_GW_USER'), password: env('E2E_GW_PASSWORD') });
  const client = await connect(url, token.access_token);
  const fail = (msg) => assert.fail(`unexpected request from the server: ${JSON.stringify(msg)}`);
  try {
    // Several calls, with ids that differ from the upstream's own request ids.
    for (const id of [7, 8]) {
      const sampled = await client.call(id, 'tools/call', { name: 'test_sampling', arguments: { prompt: `question ${id}` } }, (msg) => {
        if (msg.method !== 'sampling/createMessage') fail(msg);
        assert.equal(msg.params.messages[0].content.text, `question ${id}`);
        return { role: 'assistant', content: { type: 'text', text: `answer ${id}` }, model: 'e2e', stopReason: 'endTurn' };
      });
      assert.ok(sampled.response, `the tools/call ${id} response arrived on its stream (seen: ${JSON.stringify(sampled)})`);
      assert.equal(sampled.requests.length, 1, 'sampling/createMessage arrived on the tools/call stream');
      assert.deepEqual(sampled.response.result?.content, [{ type: 'text', text: `LLM response: answer ${id}` }], JSON.stringify(sampled.response));
    }

    const elicited = await client.call(3, 'tools/call', { name: 'test_elicitation', arguments: { message: 'Who are you?' } }, (msg) => {
      if (msg.method !== 'elicitation/create') fail(msg);
      assert.equal(msg.params.message, 'Who are you?');
      assert.deepEqual(msg.params.requestedSchema.required, ['username', 'email']);
      return { action: 'accept', content: { username: 'e2e', email: 'e2e@example.com' } };
    });
    assert.ok(elicited.response, `the tools/call response arrived on its stream (seen: ${JSON.stringify(elicited)})`);
    assert.equal(elicited.requests.length, 1, 'elicitation/create arrived on the tools/call stream');
    assert.match(elicited.response.result?.content?.[0]?.text ?? '', /^User response: action=accept, content=.*e2e@example\.com/);

    const progress = await client.call(4, 'tools/call', { name: 'test_tool_with_progress', arguments: {}, _meta: { progressToken: 'p-4' } }, fail);
    assert.ok(progress.response?.result, JSON.stringify(progress));
    const reports = progress.notifications.filter((n) => n.method === 'notifications/progress');
    assert.deepEqual(reports.map((n) => [n.params.progressToken, n.params.progress, n.params.total]), [['p-4', 0, 100], ['p-4', 50, 100], ['p-4', 100, 100]]);
  } finally {
    await client.close();
  }
});

// MCP 2026-07-28 through the gateway, with the official TypeScript SDK v2
// client (@modelcontextprotocol/client 2.4.0) pinned to the 2026-07-28
// revision (`versionNegotiation: { mode: { pin: '2026-07-28' } }`: the
// stateless era, `server/discover` instead of `initialize`), signed in with
// OAuth against the gateway server of run.sh, whose upstream
// `mcpgate-fixture-upstream --conformance` (prefix "") speaks a 2025
// revision over stdio:
//
// 1. multi-round-trip (SEP-2322): `test_elicitation` makes the upstream
//    send `elicitation/create` in the middle of the call; the gateway answers
//    the 2026 client with an InputRequiredResult, the SDK fulfils it through
//    its `elicitation/create` handler and retries with `inputResponses` and
//    `requestState`, and the answer reaches the upstream, which was waiting;
// 2. subscriptions (SEP-2575): `client.listen({ toolsListChanged: true })`
//    receives `notifications/tools/list_changed` when the upstream's tool
//    list changes (`test_trigger_tool_change`), and a prompts-only
//    subscription does not;
// 3. tasks (SEP-2663 extension): a call of the task-supporting
//    `slow_compute` creates a task, `tasks/get` sees it working, then
//    completed with the tool's result inlined.
//
// Isolation: a second user of the gateway cannot use the first user's
// `requestState` (the first user's pending call still completes with the
// first user's answer) nor see or cancel the first user's task.
//
// The SDK's `Client` has no runtime for the tasks extension in 2.4.0: on a
// 2026-07-28 connection it refuses to send `tasks/get`/`tasks/cancel`
// (SdkError METHOD_NOT_SUPPORTED_BY_PROTOCOL_VERSION, raised locally) and
// rejects a `resultType: "task"` result (UNSUPPORTED_RESULT_TYPE). The task
// test therefore drives the SDK's own StreamableHTTPClientTransport (OAuth,
// token refresh, the MCP-Protocol-Version / Mcp-Method / Mcp-Name headers
// derived from the `_meta` envelope, JSON or SSE responses) with the
// extension's JSON-RPC messages.
//
// Environment (set by run.sh): E2E_GW_ISSUER, E2E_GW_USER, E2E_GW_PASSWORD,
// E2E_GW_USER2, E2E_GW_PASSWORD2 (a second user of the gateway server).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { MemoryOAuthProvider, driveLogin, env } from './lib/oauth.mjs';

const MODERN = '2026-07-28';
const TASKS = 'io.modelcontextprotocol/tasks';
const ISSUER = env('E2E_GW_ISSUER');
const MCP_URL = new URL('/v1/ai/mcp', ISSUER);
const INFO = { name: 'mcpgate-e2e-2026', version: '0.0.0' };

const text = (result) => (result?.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what, predicate, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * The whole OAuth flow with a 2026-07-28 client: the first connect (the
 * `server/discover` probe) is refused with 401, the SDK discovers the
 * authorization server, registers and asks to open the authorization URL;
 * the test signs in and approves, and the SDK redeems the code.
 */
async function signIn(user, password) {
  const provider = new MemoryOAuthProvider(`mcpgate-e2e-2026 (${user})`);
  const client = new Client(INFO, { versionNegotiation: { mode: { pin: MODERN } } });
  const transport = new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider });
  await assert.rejects(client.connect(transport));
  await client.close().catch(() => {});
  assert.ok(provider.pendingAuthUrl, 'the SDK asked to open the authorization URL');
  const back = await driveLogin(provider.pendingAuthUrl, user, password);
  // The SDK checks the RFC 9207 `iss` of the callback before it redeems the code.
  await transport.finishAuth(back.url.searchParams);
  assert.ok(provider.tokens()?.access_token, 'access token saved');
  return provider;
}

/** A Client connected over 2026-07-28 (no initialize, no session). */
async function connect(provider, options = {}) {
  const client = new Client(INFO, { versionNegotiation: { mode: { pin: MODERN } }, ...options });
  await client.connect(new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider }));
  assert.equal(client.getProtocolEra(), 'modern');
  assert.equal(client.getNegotiatedProtocolVersion(), MODERN);
  return client;
}

/**
 * The SDK's transport without its Client, for the tasks extension (see the
 * top of the file): `request(method, params)` sends one JSON-RPC request with
 * the 2026-07-28 `_meta` envelope (declaring the tasks extension) and
 * resolves to its response message ({result} or {error}).
 */
async function rawModern(provider) {
  const transport = new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider });
  const pending = new Map();
  transport.onmessage = (message) => {
    const waiter = message.id !== undefined && pending.get(message.id);
    if (waiter && (message.result !== undefined || message.error !== undefined)) {
      pending.delete(message.id);
      waiter(message);
    }
  };
  transport.onerror = () => {};
  await transport.start();
  let next = 1;
  const envelope = {
    'io.modelcontextprotocol/protocolVersion': MODERN,
    'io.modelcontextprotocol/clientInfo': INFO,
    'io.modelcontextprotocol/clientCapabilities': { extensions: { [TASKS]: {} } },
  };
  function request(method, params = {}) {
    const id = `e2e-${next++}`;
    return new Promise((resolve, reject) => {
      pending.set(id, resolve);
      transport.send({ jsonrpc: '2.0', id, method, params: { ...params, _meta: envelope } }).catch((e) => {
        pending.delete(id);
        reject(e);
      });
    });
  }
  return { request, close: () => transport.close() };
}

let alice; // the gateway's admin (E2E_GW_USER)
let bob; // a second user of the gateway (E2E_GW_USER2)

before(async () => {
  alice = await signIn(env('E2E_GW_USER'), env('E2E_GW_PASSWORD'));
  bob = await signIn(env('E2E_GW_USER2'), env('E2E_GW_PASSWORD2'));
});

test('2026-07-28 via gateway: connect with OAuth, server/discover, tools of the 2025 upstream', { timeout: 60_000 }, async () => {
  const client = await connect(alice);
  try {
    const discovered = client.getDiscoverResult();
    assert.ok(discovered?.supportedVersions?.includes(MODERN), JSON.stringify(discovered));
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    for (const want of ['whoami', 'test_simple_text', 'test_elicitation']) {
      assert.ok(names.includes(want), `tools/list has ${want}: ${names.join(', ')}`);
    }
    const simple = await client.callTool({ name: 'test_simple_text', arguments: {} });
    assert.ok(!simple.isError, JSON.stringify(simple));
    assert.equal(text(simple), 'This is a simple text response for testing.');
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    assert.equal(who.structuredContent?.user, env('E2E_GW_USER'), JSON.stringify(who));
  } finally {
    await client.close();
  }
});

test('2026-07-28 via gateway: elicitation from a 2025 upstream is an InputRequiredResult the SDK fulfils', { timeout: 60_000 }, async () => {
  const client = await connect(alice, { capabilities: { elicitation: {} } });
  const asked = [];
  client.setRequestHandler('elicitation/create', async (request) => {
    asked.push(request.params);
    return { action: 'accept', content: { username: 'alice-2026', email: 'alice@example.com' } };
  });
  try {
    const result = await client.callTool({ name: 'test_elicitation', arguments: { message: 'Who are you?' } });
    assert.equal(asked.length, 1, `one elicitation reached the handler: ${JSON.stringify(asked)}`);
    assert.equal(asked[0].message, 'Who are you?');
    assert.deepEqual(asked[0].requestedSchema?.required, ['username', 'email']);
    assert.ok(!result.isError, JSON.stringify(result));
    // The upstream's answer quotes what it received: the SDK's answer made
    // it back to the waiting upstream.
    assert.match(text(result), /^User response: action=accept, content=.*alice@example\.com/, JSON.stringify(result));

    // Twice in a row on the same client: each call gets its own round trip.
    const again = await client.callTool({ name: 'test_elicitation', arguments: { message: 'And now?' } });
    assert.equal(asked.length, 2);
    assert.equal(asked[1].message, 'And now?');
    assert.match(text(again), /alice@example\.com/, JSON.stringify(again));
  } finally {
    await client.close();
  }
});

test('2026-07-28 via gateway: requestState is bound to its user (manual round trip, SDK allowInputRequired)', { timeout: 60_000 }, async () => {
  const a = await connect(alice, { capabilities: { elicitation: {} } });
  const b = await connect(bob, { capabilities: { elicitation: {} } });
  b.setRequestHandler('elicitation/create', async () => assert.fail('no elicitation may reach the second user'));
  try {
    const call = { name: 'test_elicitation', arguments: { message: 'Alice only' } };
    const first = await a.callTool(call, { allowInputRequired: true });
    assert.equal(first.resultType, 'input_required', JSON.stringify(first));
    assert.equal(typeof first.requestState, 'string', JSON.stringify(first));
    const keys = Object.keys(first.inputRequests ?? {});
    assert.equal(keys.length, 1, JSON.stringify(first));
    const embedded = first.inputRequests[keys[0]];
    assert.equal(embedded.method, 'elicitation/create', JSON.stringify(embedded));
    assert.equal(embedded.params?.message, 'Alice only');

    // Bob replays Alice's state with his own answer: refused.
    const bobsAnswer = { [keys[0]]: { action: 'accept', content: { username: 'bob', email: 'bob@example.com' } } };
    await assert.rejects(
      b.callTool({ ...call, inputResponses: bobsAnswer, requestState: first.requestState }),
      (e) => {
        assert.equal(e?.code, -32602, `invalid params (the state's integrity check), got ${e?.stack ?? e}`);
        return true;
      },
      'the second user cannot use the first user\'s requestState',
    );
    // A tampered state is refused too.
    const tampered = first.requestState.slice(0, -2) + (first.requestState.endsWith('AA') ? 'BB' : 'AA');
    await assert.rejects(a.callTool({ ...call, inputResponses: bobsAnswer, requestState: tampered }), (e) => e?.code === -32602);

    // Alice's own retry completes with Alice's answer: Bob's attempt neither
    // consumed nor answered her pending request.
    const alicesAnswer = { [keys[0]]: { action: 'accept', content: { username: 'alice', email: 'alice-only@example.com' } } };
    const done = await a.callTool({ ...call, inputResponses: alicesAnswer, requestState: first.requestState });
    assert.ok(!done.isError, JSON.stringify(done));
    assert.match(text(done), /alice-only@example\.com/, JSON.stringify(done));
    assert.doesNotMatch(text(done), /bob@example\.com/);
  } finally {
    await a.close();
    await b.close();
  }
});

test('2026-07-28 via gateway: subscriptions/listen receives tools/list_changed from the upstream', { timeout: 60_000 }, async () => {
  const listener = await connect(alice);
  const narrow = await connect(alice);
  const trigger = await connect(alice);
  const tools = [];
  const narrowTools = [];
  listener.setNotificationHandler('notifications/tools/list_changed', (n) => { tools.push(n); });
  narrow.setNotificationHandler('notifications/tools/list_changed', (n) => { narrowTools.push(n); });
  try {
    assert.ok(listener.getServerCapabilities()?.tools?.listChanged, `tools.listChanged advertised: ${JSON.stringify(listener.getServerCapabilities())}`);
    const sub = await listener.listen({ toolsListChanged: true });
    assert.equal(sub.honoredFilter.toolsListChanged, true, JSON.stringify(sub.honoredFilter));
    const promptsOnly = await narrow.listen({ promptsListChanged: true });
    assert.notEqual(promptsOnly.honoredFilter.toolsListChanged, true, JSON.stringify(promptsOnly.honoredFilter));

    const fired = await trigger.callTool({ name: 'test_trigger_tool_change', arguments: {} });
    assert.ok(!fired.isError, JSON.stringify(fired));
    await waitFor('notifications/tools/list_changed on the subscription', () => tools.length >= 1);
    const stamp = tools[0].params?._meta?.['io.modelcontextprotocol/subscriptionId'];
    assert.ok(stamp !== undefined, `the notification names its subscription: ${JSON.stringify(tools[0])}`);

    // The list can be fetched again after the change.
    const { tools: listed } = await listener.listTools(undefined, { cacheMode: 'refresh' });
    assert.ok(listed.some((t) => t.name === 'test_elicitation'));

    // The prompts-only subscription saw no tools notification.
    await sleep(500);
    assert.equal(narrowTools.length, 0, `filtered out: ${JSON.stringify(narrowTools)}`);

    await sub.close();
    assert.equal(await sub.closed, 'local');
    await promptsOnly.close();
  } finally {
    await listener.close();
    await narrow.close();
    await trigger.close();
  }
});

test('2026-07-28 via gateway: a task\'s whole life (tasks extension over a 2025 upstream), invisible to another user', { timeout: 60_000 }, async () => {
  // The extension is advertised by server/discover.
  const probe = await connect(alice);
  try {
    const extensions = probe.getServerCapabilities()?.extensions ?? {};
    assert.ok(TASKS in extensions, `capabilities.extensions has ${TASKS}: ${JSON.stringify(probe.getServerCapabilities())}`);
  } finally {
    await probe.close();
  }

  const a = await rawModern(alice);
  const b = await rawModern(bob);
  try {
    // Create: the tool supports tasks, so the server answers with a task.
    const created = await a.request('tools/call', { name: 'slow_compute', arguments: { seconds: 2 } });
    assert.ok(created.result, JSON.stringify(created));
    const task = created.result;
    assert.equal(task.resultType, 'task', JSON.stringify(task));
    assert.equal(typeof task.taskId, 'string', JSON.stringify(task));
    assert.ok(['working', 'submitted'].includes(task.status), JSON.stringify(task));
    assert.ok(!('task' in task), 'a flat CreateTaskResult, no nested task');
    assert.ok(task.createdAt && task.lastUpdatedAt, JSON.stringify(task));

    // Get while working.
    const working = await a.request('tasks/get', { taskId: task.taskId });
    assert.ok(working.result, JSON.stringify(working));
    assert.equal(working.result.taskId, task.taskId);
    assert.equal(working.result.status, 'working', JSON.stringify(working));
    assert.equal(working.result.result, undefined, 'no result while working');

    // Another user: the task does not exist for him, and he cannot cancel it.
    const bobGet = await b.request('tasks/get', { taskId: task.taskId });
    assert.ok(bobGet.error, `the second user cannot see the task: ${JSON.stringify(bobGet)}`);
    assert.equal(bobGet.error.code, -32602, JSON.stringify(bobGet));
    const bobCancel = await b.request('tasks/cancel', { taskId: task.taskId });
    assert.equal(bobCancel.error?.code, -32602, `the second user cannot cancel the task: ${JSON.stringify(bobCancel)}`);

    // Completed, with the tool's result inlined.
    let final;
    const until = Date.now() + 20_000;
    do {
      await sleep(200);
      final = await a.request('tasks/get', { taskId: task.taskId });
      assert.ok(final.result, JSON.stringify(final));
    } while (final.result.status === 'working' && Date.now() < until);
    assert.equal(final.result.status, 'completed', JSON.stringify(final));
    assert.ok(Array.isArray(final.result.result?.content) && final.result.result.content.length > 0, JSON.stringify(final));
    assert.notEqual(final.result.result.isError, true, JSON.stringify(final));
    assert.equal(final.result.error, undefined);

    // Still invisible to the other user once completed.
    const bobAfter = await b.request('tasks/get', { taskId: task.taskId });
    assert.equal(bobAfter.error?.code, -32602, JSON.stringify(bobAfter));
  } finally {
    await a.close();
    await b.close();
  }
});

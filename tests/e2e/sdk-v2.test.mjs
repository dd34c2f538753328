// The official TypeScript SDK v2 client (@modelcontextprotocol/client 2.x)
// against the direct mcpgate, registering the ways MCP 2026-07-28 prefers:
//
// 1. Client ID Metadata Documents (`clientMetadataUrl`): the client's id is
//    the https URL of its metadata document, served here by a local HTTPS
//    server with a certificate from the test CA that run.sh made and gave
//    mcpgate as `outbound_ca_file` (with `outbound_allow_networks =
//    ["127.0.0.1/32"]`, since the document lives on loopback). Two shapes:
//    Claude's (`token_endpoint_auth_method: none`) and ChatGPT's
//    (`private_key_jwt`, RS256, `jwks_uri`), the latter signing its token
//    requests with the SDK's own `createPrivateKeyJwtAuth`.
// 2. A machine client (client credentials, SEP-1046) pre-registered with
//    `mcpgate client add --jwks-uri`, using the SDK's `PrivateKeyJwtProvider`
//    (ES256): its token names the client, and `whoami` says it is a service.
//
// Environment (run.sh): E2E_ISSUER, E2E_USER, E2E_PASSWORD, E2E_TLS_DIR
// (ca.pem, server.pem, server.key), E2E_MCPGATE (the binary) and
// E2E_DIRECT_DIR (the direct server's directory, for `mcpgate client add`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import {
  Client,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  PrivateKeyJwtProvider,
  createPrivateKeyJwtAuth,
} from '@modelcontextprotocol/client';
import { MemoryOAuthProvider, REDIRECT_URI, driveLogin, env } from './lib/oauth.mjs';

const ISSUER = env('E2E_ISSUER');
const MCP_URL = new URL('/v1/ai/mcp', ISSUER);
const TLS = env('E2E_TLS_DIR');

// ---------------------------------------------------------------- the client's host

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const publicJwk = (pair, kid, alg) => ({ ...pair.publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' });

const documents = new Map(); // path -> JSON body
const hits = new Map(); // path -> how many GETs
let host;
let base;

before(async () => {
  host = createServer(
    { key: readFileSync(join(TLS, 'server.key')), cert: readFileSync(join(TLS, 'server.pem')) },
    (req, res) => {
      const path = new URL(req.url, 'https://x').pathname;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const body = documents.get(path);
      if (req.method !== 'GET' || body === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' });
      res.end(JSON.stringify(body));
    },
  );
  await new Promise((resolve) => host.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${host.address().port}`;
  documents.set('/oauth/jwks.json', { keys: [publicJwk(rsa, 'rsa-1', 'RS256')] });
  documents.set('/machine/jwks.json', { keys: [publicJwk(ec, 'ec-1', 'ES256')] });
});

after(() => new Promise((resolve) => host.close(resolve)));

/** A CIMD provider: the SDK's OAuthClientProvider with `clientMetadataUrl`. */
class MetadataDocumentProvider extends MemoryOAuthProvider {
  constructor(url, metadata, addClientAuthentication) {
    super(metadata.client_name);
    this.clientMetadataUrl = url;
    this._clientMetadata = metadata;
    if (addClientAuthentication) this.addClientAuthentication = addClientAuthentication;
  }
}

async function authorizeAndCall(provider, documentUrl) {
  let client = new Client({ name: 'mcpgate-e2e-sdk-v2', version: '0.0.0' });
  let transport = new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider });
  await assert.rejects(client.connect(transport), (e) => {
    assert.ok(e instanceof UnauthorizedError, `expected UnauthorizedError, got ${e?.stack ?? e}`);
    return true;
  });
  await client.close().catch(() => {});
  const authUrl = provider.pendingAuthUrl;
  assert.ok(authUrl, 'the SDK asked to open the authorization URL');
  // No registration: the document's URL is the client id.
  assert.equal(authUrl.searchParams.get('client_id'), documentUrl);
  assert.equal(provider.clientInformation()?.client_id, documentUrl);

  const back = await driveLogin(authUrl, env('E2E_USER'), env('E2E_PASSWORD'));
  assert.equal(back.state, authUrl.searchParams.get('state'));
  // The SDK checks the RFC 9207 `iss` of the callback before it redeems
  // the code.
  await transport.finishAuth(back.url.searchParams);
  const tokens = provider.tokens();
  assert.ok(tokens?.access_token, 'access token saved');

  client = new Client({ name: 'mcpgate-e2e-sdk-v2', version: '0.0.0' });
  transport = new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider });
  await client.connect(transport);
  try {
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    assert.ok(!who.isError, JSON.stringify(who));
    assert.equal(who.structuredContent?.user, env('E2E_USER'), JSON.stringify(who));
    // A refresh authenticates the client again (for private_key_jwt: a new
    // assertion with a new jti).
    if (tokens.refresh_token) {
      provider._tokens = { ...tokens, access_token: 'spoiled-' + tokens.access_token };
      const again = await client.callTool({ name: 'whoami', arguments: {} });
      assert.equal(again.structuredContent?.user, env('E2E_USER'), JSON.stringify(again));
      assert.notEqual(provider.tokens().access_token, tokens.access_token, 'refreshed');
    }
  } finally {
    await client.close();
  }
}

test('SDK v2, CIMD shaped like Claude\'s (none): clientMetadataUrl, sign-in, tools/call', { timeout: 60_000 }, async () => {
  const path = '/claude/client.json';
  const url = base + path;
  const metadata = {
    client_id: url,
    client_name: 'Claude (e2e)',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  };
  documents.set(path, metadata);
  await authorizeAndCall(new MetadataDocumentProvider(url, metadata), url);
  // Cached (max-age=3600): one fetch for the authorization, the token
  // exchange and the refresh.
  assert.equal(hits.get(path), 1, 'the metadata document was fetched once');
});

test('SDK v2, CIMD shaped like ChatGPT\'s (private_key_jwt, RS256, jwks_uri)', { timeout: 60_000 }, async () => {
  const path = '/oauth/chatgpt/client.json';
  const url = base + path;
  const metadata = {
    client_id: url,
    client_name: 'ChatGPT (e2e)',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'],
    jwks_uri: base + '/oauth/jwks.json',
  };
  documents.set(path, metadata);
  const auth = createPrivateKeyJwtAuth({
    issuer: url,
    subject: url,
    privateKey: rsa.privateKey.export({ format: 'pem', type: 'pkcs8' }),
    alg: 'RS256',
  });
  await authorizeAndCall(new MetadataDocumentProvider(url, metadata, auth), url);
  assert.ok(hits.get('/oauth/jwks.json') >= 1, 'mcpgate fetched the client\'s keys');
});

test('SDK v2, machine client: client credentials with PrivateKeyJwtProvider (ES256), whoami is the service', { timeout: 60_000 }, async () => {
  const out = execFileSync(env('E2E_MCPGATE'), [
    'client', 'add', '--name', 'e2e machine', '--jwks-uri', base + '/machine/jwks.json',
    '--grant-types', 'client_credentials', '--scope', 'mcp',
  ], { cwd: env('E2E_DIRECT_DIR'), encoding: 'utf8' });
  const clientId = out.match(/client_id[:=]\s*(\S+)/i)?.[1];
  assert.ok(clientId, `mcpgate client add printed a client id:\n${out}`);

  const provider = new PrivateKeyJwtProvider({
    clientId,
    privateKey: ec.privateKey.export({ format: 'pem', type: 'pkcs8' }),
    algorithm: 'ES256',
    clientName: 'e2e machine',
    scope: 'mcp',
    expectedIssuer: ISSUER,
  });
  const client = new Client({ name: 'mcpgate-e2e-machine', version: '0.0.0' });
  await client.connect(new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider }));
  try {
    assert.ok(provider.tokens()?.access_token, 'the SDK obtained a token with client_credentials');
    assert.equal(provider.tokens()?.refresh_token, undefined, 'no refresh token for client credentials');
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    assert.ok(!who.isError, JSON.stringify(who));
    const text = JSON.stringify(who);
    assert.ok(text.includes(clientId), `whoami names the client: ${text}`);
    assert.match(text, /service/i, `whoami says it is a service identity: ${text}`);
    assert.ok(!text.includes(`"user":"${env('E2E_USER')}"`), `never a user: ${text}`);
  } finally {
    await client.close();
  }
});

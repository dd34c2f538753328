// A real OpenID Connect provider for the federation browser test: npm
// oidc-provider (OpenID Certified; pinned in package.json), started by
// run.sh on a free port of 127.0.0.1 with one static confidential client:
// mcpgate's callback URL as its only redirect URI, client_secret_basic,
// PKCE required. Its development interactions sign in any login name with
// any password (the account's claims are made up from the login: sub,
// email, email_verified, name, preferred_username); "[ Cancel ]" aborts
// with access_denied.
//
// Environment: OP_REDIRECT_URI (mcpgate's /oauth/callback URL),
// OP_CLIENT_ID, OP_CLIENT_SECRET. Prints `oidc-provider listening on <issuer>`.
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: env('OP_CLIENT_ID'),
    client_secret: env('OP_CLIENT_SECRET'),
    redirect_uris: [env('OP_REDIRECT_URI')],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@example.com`, email_verified: true, name: `Test ${id}`, preferred_username: id };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['browser-test-only-cookie-key'] },
});

server.on('request', provider.callback());
console.log(`oidc-provider listening on ${issuer}`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));

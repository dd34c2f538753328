// The official TypeScript SDK peer (bench/run, workloads 1 and 5): a
// Streamable HTTP server with the SDK's own bearer-auth middleware
// (`requireBearerAuth`, a static token verifier) and one trivial tool,
// `echo`. Sessions are stateful (one transport per `initialize`, found again
// by `Mcp-Session-Id`) and answer with JSON (`enableJsonResponse`), as
// mcpgate's sessions do over rmcp.
//
//   node bench/peers/ts-sdk.mjs PORT TOKEN
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { z } from 'zod';

const port = Number(process.argv[2] ?? 3401);
const secret = process.argv[3] ?? 'bench-token';
const resource = new URL(`http://127.0.0.1:${port}/mcp`);

const verifier = {
  async verifyAccessToken(token) {
    if (token !== secret) {
      const { InvalidTokenError } = await import('@modelcontextprotocol/sdk/server/auth/errors.js');
      throw new InvalidTokenError('unknown token');
    }
    return {
      token,
      clientId: 'bench',
      scopes: ['mcp'],
      expiresAt: Math.floor(Date.now() / 1000) + 3600,
      resource,
    };
  },
};

function newServer() {
  const server = new McpServer({ name: 'ts-sdk-peer', version: '1.0.0' });
  server.registerTool(
    'echo',
    { description: 'Returns the text it is given.', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  return server;
}

const app = createMcpExpressApp({ host: '127.0.0.1' });
const auth = requireBearerAuth({ verifier, requiredScopes: ['mcp'], expectedResource: resource });
const transports = new Map();

app.post('/mcp', auth, async (req, res) => {
  const sid = req.headers['mcp-session-id'];
  let transport = sid ? transports.get(sid) : undefined;
  if (!transport) {
    if (sid || !isInitializeRequest(req.body)) {
      res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
      return;
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: true,
      onsessioninitialized: (id) => transports.set(id, transport),
    });
    transport.onclose = () => transport.sessionId && transports.delete(transport.sessionId);
    await newServer().connect(transport);
  }
  await transport.handleRequest(req, res, req.body);
});

const streamOrDelete = async (req, res) => {
  const transport = transports.get(req.headers['mcp-session-id']);
  if (!transport) {
    res.status(404).end();
    return;
  }
  await transport.handleRequest(req, res);
};
app.get('/mcp', auth, streamOrDelete);
app.delete('/mcp', auth, streamOrDelete);
app.get('/healthz', (_req, res) => res.send('ok'));

app.listen(port, '127.0.0.1', () => console.error(`ts-sdk peer on 127.0.0.1:${port}`));

// A loopback proxy for the conformance suite, which cannot send an
// Authorization header: it forwards every request to mcpgate unchanged
// (method, path, body and every header, Host and Origin included) and adds
// `Authorization: Bearer <token>`. Responses are streamed back as they
// arrive (SSE streams are never buffered).
import http from 'node:http';

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
]);

/**
 * Starts the proxy on 127.0.0.1 (port 0). `upstream` is mcpgate's real
 * address (http://127.0.0.1:PORT). Resolves to { port, close() }.
 */
export async function startProxy({ upstream, token }) {
  const target = new URL(upstream);
  const server = http.createServer((req, res) => {
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(k)) headers[k] = v; // keeps host and origin as sent
    }
    headers.authorization = `Bearer ${token}`;
    const up = http.request({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers,
    }, (upRes) => {
      const out = {};
      for (const [k, v] of Object.entries(upRes.headers)) {
        if (!HOP_BY_HOP.has(k)) out[k] = v;
      }
      res.writeHead(upRes.statusCode, upRes.statusMessage, out);
      res.flushHeaders();
      upRes.on('data', (chunk) => res.write(chunk)); // write each chunk at once: no buffering
      upRes.on('end', () => res.end());
      upRes.on('error', () => res.destroy());
    });
    up.on('error', (e) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`proxy: ${e.message}\n`);
      } else {
        res.destroy();
      }
    });
    // The client going away (e.g. closing an SSE stream) closes the upstream request too.
    res.on('close', () => { if (!res.writableFinished) up.destroy(); });
    req.pipe(up);
  });
  server.keepAliveTimeout = 1000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: server.address().port,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

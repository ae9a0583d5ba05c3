// @ts-check
/**
 * The aggregate bench's upstreams: one Node HTTP server, many MCP servers by path. `/<ms>/mcp`
 * answers `tools/list` after `ms` milliseconds (TOOLS tools named `tool_1`…), everything else at
 * once: `server/discover` (2026-07-28, stateless), `initialize`, `ping`, and `tools/call`
 * (`{"content":[{"type":"text","text":"ok"}]}`). `/<ms>/fresh/mcp` is the same with `ttlMs: 0` on
 * the list, so the gateway keeps nothing and every list asks again. Requests must carry
 * `Authorization: Bearer <token>`; answers are JSON.
 */
import { createServer } from 'node:http';

export const TOOLS = 10;
const tools = Array.from({ length: TOOLS }, (_, i) => ({
  name: `tool_${i + 1}`,
  description: `Bench tool ${i + 1}`,
  inputSchema: { type: 'object', properties: { text: { type: 'string' } } },
  annotations: { readOnlyHint: true },
}));

/** @param {string} token the bearer token every request must carry */
export async function startDelayedUpstream(token) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const [, ms, fresh] = /^\/(\d+)(\/fresh)?\/mcp$/.exec(url.pathname) ?? [];
    const delay = Number(ms ?? Number.NaN);
    if (!Number.isFinite(delay)) return send(res, 404, { error: 'not_found' });
    if (req.headers.authorization !== `Bearer ${token}`) return send(res, 401, { error: 'invalid_token' });
    if (req.method !== 'POST') return send(res, 405, { error: 'method_not_allowed' });
    /** @type {{ id?: unknown, method?: string, params?: Record<string, unknown> }} */
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return send(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } });
    }
    if (message.id === undefined) return send(res, 202, undefined);
    const result = (/** @type {Record<string, unknown>} */ value) =>
      send(res, 200, { jsonrpc: '2.0', id: message.id, result: { resultType: 'complete', ...value } });
    switch (message.method) {
      case 'server/discover':
        return result({
          supportedVersions: ['2026-07-28'],
          capabilities: { tools: { listChanged: false } },
          serverInfo: { name: `bench-delayed-${delay}`, version: '1.0.0' },
        });
      case 'initialize':
        return result({ protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: `bench-delayed-${delay}`, version: '1.0.0' } });
      case 'ping':
        return result({});
      case 'tools/list': {
        await new Promise((resolve) => setTimeout(resolve, delay));
        return result({ tools, ...(fresh ? { ttlMs: 0, cacheScope: 'private' } : {}) });
      }
      case 'tools/call':
        return result({ content: [{ type: 'text', text: 'ok' }] });
      default:
        return send(res, 200, { jsonrpc: '2.0', id: message.id, error: { code: -32601, message: `no method ${message.method}` } });
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the delayed upstream did not bind');
  return {
    origin: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve(undefined));
      }),
  };
}

/** @param {import('node:http').ServerResponse} res @param {number} status @param {unknown} body */
function send(res, status, body) {
  if (body === undefined) return void res.writeHead(status).end();
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

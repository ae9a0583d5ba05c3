/**
 * An upstream as the MCP TypeScript SDK v2 builds one: `createMcpHandler` from
 * `@modelcontextprotocol/server`, stateless, behind a check for one bearer token, on a free
 * loopback port in this process. At `/mcp` it speaks 2026-07-28 only (`legacy: 'reject'`:
 * `initialize` is refused); at `/both/mcp` the same tools serve 2025 clients too
 * (`legacy: 'stateless'`).
 *
 * Tools: `get_issue` (read-only), `create_issue` (not), and `count_up` (read-only), which sends a
 * progress notification and then waits for `releaseCount()` before its result, so a test can tell
 * a progress event that streamed from one held back with the result without timing anything.
 */
import { createServer, type Server } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';

export interface V2Upstream {
  /** 2026-07-28 only. */
  url: string;
  /** 2026-07-28, and 2025 clients without sessions. */
  bothUrl: string;
  /** What the gateway's own requests said of themselves: each `_meta` clientInfo, with the method. */
  gatewayRequests: Array<{ method: string; clientInfo: unknown; protocolVersion: string | null }>;
  /** How many times `create_issue` ran. */
  creations: () => number;
  /** Lets a waiting `count_up` finish. */
  releaseCount: () => void;
  /** Publishes `notifications/tools/list_changed` on every open `subscriptions/listen` stream. */
  toolsChanged: () => void;
  stop: () => Promise<void>;
}

export async function startV2Upstream(token: string): Promise<V2Upstream> {
  let creations = 0;
  let release: () => void = () => {};
  const gatewayRequests: V2Upstream['gatewayRequests'] = [];

  const factory = () => {
    const server = new McpServer({ name: 'e2e-v2-upstream', version: '2.4.0' });
    server.registerTool('get_issue', { description: 'Reads an issue', annotations: { readOnlyHint: true } }, async () => ({
      content: [{ type: 'text', text: 'issue #1: works on 2026-07-28' }],
    }));
    server.registerTool('create_issue', { description: 'Opens an issue', annotations: { readOnlyHint: false } }, async () => {
      creations++;
      return { content: [{ type: 'text', text: 'issue #2 opened' }] };
    });
    server.registerTool('count_up', { description: 'Counts, reporting progress', annotations: { readOnlyHint: true } }, async (ctx) => {
      const progressToken = ctx.mcpReq._meta?.progressToken;
      if (progressToken !== undefined) {
        await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress: 1, total: 2 } });
      }
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return { content: [{ type: 'text', text: 'counted to 2' }] };
    });
    return server;
  };
  const handler = createMcpHandler(factory, { legacy: 'reject' });
  const both = createMcpHandler(factory, { legacy: 'stateless' });

  const http: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': 'Bearer error="invalid_token"' });
      res.end('{"error":"invalid_token"}');
      return;
    }
    try {
      const message = JSON.parse(body) as { id?: unknown; method?: string; params?: { _meta?: Record<string, unknown> } };
      if (String(message.id).startsWith('mcp-oauth-gateway')) {
        gatewayRequests.push({
          method: message.method ?? '',
          clientInfo: message.params?._meta?.['io.modelcontextprotocol/clientInfo'],
          protocolVersion: req.headers['mcp-protocol-version']?.toString() ?? null,
        });
      }
    } catch {
      // Not JSON: the handler answers it.
    }
    const headers = Object.entries(req.headers).flatMap(([name, value]) => (typeof value === 'string' ? [[name, value] as [string, string]] : []));
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method: req.method ?? 'GET',
      headers,
      body: req.method === 'POST' ? body : null,
      signal: abort.signal,
    });
    const response = await (req.url?.startsWith('/both/') ? both : handler).fetch(request);
    res.writeHead(response.status, Object.fromEntries(response.headers));
    if (!response.body) return void res.end();
    res.flushHeaders();
    Readable.fromWeb(response.body as unknown as NodeReadableStream<Uint8Array>).pipe(res);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  if (!address || typeof address === 'string') throw new Error('the v2 upstream did not bind');
  return {
    url: `http://127.0.0.1:${address.port}/mcp`,
    bothUrl: `http://127.0.0.1:${address.port}/both/mcp`,
    gatewayRequests,
    creations: () => creations,
    releaseCount: () => release(),
    toolsChanged: () => handler.notify.toolsChanged(),
    stop: async () => {
      await Promise.all([handler.close(), both.close()]);
      await new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      });
    },
  };
}

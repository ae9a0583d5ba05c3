/**
 * An upstream as the MCP TypeScript SDK v1 builds one with Express: `createMcpExpressApp()` (whose
 * `express.json()` honours a request's charset through body-parser and iconv-lite) in front of a
 * stateless StreamableHTTPServerTransport, in this process, on a free loopback port. Its
 * `delete_repo` tool records every run, so a test can say whether a call reached it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

export interface ExpressUpstream {
  url: string;
  /** How many times `delete_repo` ran. */
  deletions: () => number;
  /** The Authorization header of every request that reached the MCP route. */
  authorizations: string[];
  stop: () => Promise<void>;
}

type ExpressRequest = IncomingMessage & { body?: unknown };

export async function startExpressUpstream(): Promise<ExpressUpstream> {
  let deletions = 0;
  const authorizations: string[] = [];
  const mcpServer = () => {
    const server = new McpServer({ name: 'express-upstream', version: '1.0.0' });
    server.registerTool('delete_repo', { description: 'Deletes a repository', annotations: { destructiveHint: true } }, async () => {
      deletions++;
      return { content: [{ type: 'text', text: 'repository deleted' }] };
    });
    server.registerTool('get_issue', { description: 'Reads an issue', annotations: { readOnlyHint: true } }, async () => ({
      content: [{ type: 'text', text: 'issue #1' }],
    }));
    return server;
  };

  const app = createMcpExpressApp();
  // Stateless, as the SDK's own example: a server and transport per request.
  app.post('/mcp', async (req: ExpressRequest, res: ServerResponse) => {
    authorizations.push(req.headers.authorization ?? '');
    const server = mcpServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  for (const method of ['get', 'delete'] as const) {
    app[method]('/mcp', (_req: ExpressRequest, res: ServerResponse) => {
      res.writeHead(405, { Allow: 'POST' }).end();
    });
  }

  const http: Server = createServer(app);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  if (!address || typeof address === 'string') throw new Error('the Express upstream did not bind');
  return {
    url: `http://127.0.0.1:${address.port}/mcp`,
    deletions: () => deletions,
    authorizations,
    stop: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}

import { createMcpHandler } from 'agents/mcp/server';
import { env } from 'cloudflare:workers';
import type { KanbanBoard } from './kanban-board';
import { createKanbanServer } from './tools';

export { KanbanBoard } from './kanban-board';

/**
 * The demo upstream for `npm start`: a kanban MCP server at /mcp that, like the servers the gateway
 * exists for, accepts only one static token (`Authorization: Bearer <DEMO_PAT>`) and answers 401
 * to anything else.
 */

interface UpstreamEnv {
  DEMO_PAT?: string;
  KANBAN: DurableObjectNamespace<KanbanBoard>;
}

const board = () => {
  const { KANBAN } = env as unknown as UpstreamEnv;
  return KANBAN.get(KANBAN.idFromName('demo'));
};

// Stateless: a new McpServer per request, so concurrent requests never share one.
const mcp = createMcpHandler(() => createKanbanServer(board));

export default {
  async fetch(request, workerEnv, ctx): Promise<Response> {
    if (!(await hasDemoPat(request, workerEnv.DEMO_PAT))) {
      return Response.json(
        { error: 'unauthorized', error_description: 'send Authorization: Bearer <the demo PAT>' },
        { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="demo-kanban"' } },
      );
    }
    return mcp(request, workerEnv, ctx);
  },
} satisfies ExportedHandler<UpstreamEnv>;

async function hasDemoPat(request: Request, pat: string | undefined): Promise<boolean> {
  const header = request.headers.get('Authorization') ?? '';
  if (!pat || !header.startsWith('Bearer ')) return false;
  // Compare digests so the comparison is constant-time and the lengths always match.
  const digest = async (value: string) => crypto.subtle.digest('SHA-256', new TextEncoder().encode(value));
  const [given, expected] = await Promise.all([digest(header.slice('Bearer '.length)), digest(pat)]);
  return crypto.subtle.timingSafeEqual(given, expected);
}

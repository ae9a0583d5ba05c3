import { env } from 'cloudflare:workers';
import { createMcpHandler } from 'agents/mcp/server';
import type { KanbanBoard } from './kanban-board';
import { createNotesServer } from './notes';
import { createKanbanServer } from './tools';

export { KanbanBoard } from './kanban-board';

/**
 * The demo upstreams for `npm start`, like the servers the gateway exists for each accepting only
 * static tokens and answering 401 to anything else: a kanban MCP server at /mcp
 * (`Authorization: Bearer <DEMO_PAT>`), and a notebook at /notes/mcp (any of DEMO_NOTES_TOKENS,
 * comma-separated, each its own notebook).
 */

interface UpstreamEnv {
  DEMO_PAT?: string;
  DEMO_NOTES_TOKENS?: string;
  KANBAN: DurableObjectNamespace<KanbanBoard>;
}

const board = () => {
  const { KANBAN } = env as unknown as UpstreamEnv;
  return KANBAN.get(KANBAN.idFromName('demo'));
};

// Stateless: a new McpServer per request, so concurrent requests never share one.
const kanban = createMcpHandler(() => createKanbanServer(board), { route: '/mcp' });

export default {
  async fetch(request, workerEnv, ctx): Promise<Response> {
    const { pathname } = new URL(request.url);
    if (pathname === '/notes/mcp') {
      const token = await acceptedToken(request, (workerEnv.DEMO_NOTES_TOKENS ?? '').split(','));
      if (!token) return unauthorized('demo-notes');
      return createMcpHandler(() => createNotesServer(token), { route: '/notes/mcp' })(request, workerEnv, ctx);
    }
    if (!(await acceptedToken(request, [workerEnv.DEMO_PAT ?? '']))) return unauthorized('demo-kanban');
    return kanban(request, workerEnv, ctx);
  },
} satisfies ExportedHandler<UpstreamEnv>;

function unauthorized(realm: string): Response {
  return Response.json(
    { error: 'unauthorized', error_description: 'send Authorization: Bearer <a demo token>' },
    { status: 401, headers: { 'WWW-Authenticate': `Bearer realm="${realm}"` } },
  );
}

/** The bearer token, when it is one of `accepted`. */
async function acceptedToken(request: Request, accepted: readonly string[]): Promise<string | undefined> {
  const header = request.headers.get('Authorization') ?? '';
  if (!header.startsWith('Bearer ')) return undefined;
  const given = header.slice('Bearer '.length);
  // Compare digests so each comparison is constant-time and the lengths always match.
  const digest = async (value: string) => crypto.subtle.digest('SHA-256', new TextEncoder().encode(value));
  const givenDigest = await digest(given);
  for (const token of accepted.filter(Boolean)) {
    if (crypto.subtle.timingSafeEqual(givenDigest, await digest(token))) return given;
  }
  return undefined;
}

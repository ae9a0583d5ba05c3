import { McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';

/**
 * The second demo upstream: a notebook MCP server at /notes/mcp. Each accepted token has its own
 * notebook, so a person reaching it with their own token sees only their own notes. Notes live in
 * the isolate's memory: a demo, gone when `npm start` stops.
 */
const notebooks = new Map<string, string[]>();
const MAX_NOTES = 200;

export function createNotesServer(owner: string): McpServer {
  const server = new McpServer({ name: 'demo-notes', version: '1.0.0' });
  const notes = () => notebooks.get(owner) ?? [];

  server.registerTool(
    'list_notes',
    { description: 'List the notes in this notebook, newest last.', inputSchema: z.object({}), annotations: { readOnlyHint: true } },
    async () =>
      text(
        notes()
          .map((note, i) => `${i + 1}. ${note}`)
          .join('\n') || '(no notes yet)',
      ),
  );

  server.registerTool(
    'add_note',
    { description: 'Add a note to this notebook.', inputSchema: z.object({ text: z.string().min(1).max(2000) }) },
    async ({ text: note }) => {
      const next = [...notes(), note].slice(-MAX_NOTES);
      notebooks.set(owner, next);
      return text(`saved as note ${next.length}`);
    },
  );

  server.registerTool(
    'whoami',
    {
      description: "Which token this notebook belongs to: its last four characters, the way the gateway's pages show it.",
      inputSchema: z.object({}),
      annotations: { readOnlyHint: true },
    },
    async () => text(`notebook of the token ending in ${owner.slice(-4)}`),
  );

  return server;
}

function text(value: string) {
  return { content: [{ type: 'text' as const, text: value }] };
}

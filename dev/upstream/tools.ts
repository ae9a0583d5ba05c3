import { McpServer } from '@modelcontextprotocol/server';
import { z } from 'zod';
import type { KanbanBoard } from './kanban-board';

/** The kanban MCP server: a fresh instance per request, reading and writing the one board store. */
export function createKanbanServer(kanban: () => DurableObjectStub<KanbanBoard>): McpServer {
  const server = new McpServer({ name: 'demo-kanban', version: '1.0.0' });
  const cardId = z.number().int().positive().describe('the card number, e.g. 3 for #3');

  server.registerTool(
    'list_boards',
    {
      description: 'List the kanban boards, their columns and how many open cards each column holds.',
      inputSchema: z.object({}),
      annotations: { readOnlyHint: true },
    },
    async () => run(() => kanban().listBoards()),
  );

  server.registerTool(
    'list_cards',
    {
      description: "List a board's open cards, optionally only one column, optionally with closed cards too.",
      inputSchema: z.object({
        board: z.string().describe('board id, from list_boards'),
        column: z.string().optional(),
        include_closed: z.boolean().optional(),
      }),
      annotations: { readOnlyHint: true },
    },
    async ({ board, column, include_closed }) =>
      run(() => kanban().listCards(board, { ...(column ? { column } : {}), includeClosed: include_closed ?? false })),
  );

  server.registerTool(
    'get_card',
    { description: 'Show one card with its comments.', inputSchema: z.object({ card: cardId }), annotations: { readOnlyHint: true } },
    async ({ card }) => run(() => kanban().getCard(card)),
  );

  server.registerTool(
    'create_card',
    {
      description: 'Create a card on a board, in its first column unless another is named.',
      inputSchema: z.object({
        board: z.string(),
        title: z.string().min(1).max(200),
        description: z.string().max(4000).optional(),
        column: z.string().optional(),
      }),
    },
    async ({ board, title, description, column }) => run(() => kanban().createCard(board, title, description ?? '', column)),
  );

  server.registerTool(
    'move_card',
    { description: 'Move a card to another column of its board.', inputSchema: z.object({ card: cardId, column: z.string() }) },
    async ({ card, column }) => run(() => kanban().moveCard(card, column)),
  );

  server.registerTool(
    'comment_on_card',
    { description: 'Add a comment to a card.', inputSchema: z.object({ card: cardId, text: z.string().min(1).max(4000) }) },
    async ({ card, text }) => run(() => kanban().commentOnCard(card, text)),
  );

  server.registerTool(
    'close_card',
    {
      description: 'Close a card: it leaves the board but stays readable with get_card.',
      inputSchema: z.object({ card: cardId }),
      annotations: { destructiveHint: false },
    },
    async ({ card }) => run(() => kanban().closeCard(card)),
  );

  server.registerTool(
    'count_slowly',
    {
      description: `Count from 1 to n, one step every ${STEP_MS} ms, each step sent as a progress notification before the result: a demo of a tool that streams.`,
      inputSchema: z.object({ n: z.number().int().min(1).max(MAX_STEPS).describe('how far to count, at most 50') }),
      annotations: { readOnlyHint: true },
    },
    async ({ n }, ctx) => {
      const progressToken = ctx.mcpReq._meta?.progressToken;
      for (let step = 1; step <= n; step++) {
        await new Promise((resolve) => setTimeout(resolve, STEP_MS));
        // Only a client that asked for progress (sent a progressToken) gets the notifications.
        if (progressToken !== undefined) {
          await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress: step, total: n, message: `counted to ${step}` } });
        }
      }
      return { content: [{ type: 'text' as const, text: `counted to ${n}` }] };
    },
  );

  return server;
}

const STEP_MS = 100;
const MAX_STEPS = 50;

/** Every tool answers with JSON text; a refusal (unknown board, card, column) is a tool error the model can read. */
async function run(action: () => Promise<unknown>) {
  try {
    return { content: [{ type: 'text' as const, text: JSON.stringify(await action(), null, 2) }] };
  } catch (error) {
    // Errors cross the Durable Object's RPC boundary as plain Errors: the message is what we wrote.
    return { content: [{ type: 'text' as const, text: error instanceof Error ? error.message : 'failed' }], isError: true };
  }
}

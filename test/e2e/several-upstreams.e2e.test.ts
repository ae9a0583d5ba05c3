import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_NOTES_TOKENS } from '../../dev/stack.mjs';
import { connectWithOAuth } from './support/mcp-client';
import { connectV2WithOAuth } from './support/mcp-client-v2';
import { Recorder } from './support/recorder';
import { type E2EStack, gatewayLogs, need, startE2EStack } from './support/stack';

/** Several upstreams behind one gateway: the demo kanban at /kanban/mcp and the notes server at /notes/mcp. */

let stack: E2EStack | undefined;
beforeAll(async () => {
  stack = await startE2EStack();
});
afterAll(async () => {
  await stack?.stop();
});

function connectorUrl(name: string): string {
  const url = need(stack).connectors.find((c) => c.name === name)?.url;
  if (!url) throw new Error(`no connector named ${name}`);
  return url;
}

describe('several upstreams behind one gateway', () => {
  it('connects the SDK client to two upstreams in one run, one sign-in each, each upstream with its own token', async () => {
    const { upstreamToken } = need(stack);
    const recorder = new Recorder();
    const kanban = await connectWithOAuth(connectorUrl('kanban'), { recorder });
    const [notesToken = ''] = DEMO_NOTES_TOKENS;
    const notes = await connectWithOAuth(connectorUrl('notes'), { recorder, ownTokens: [notesToken] });

    // Each upstream accepts only its own demo token, so a working tools/list shows it got it.
    expect((await kanban.client.listTools()).tools.map((t) => t.name)).toContain('list_boards');
    expect((await notes.client.listTools()).tools.map((t) => t.name)).toEqual(expect.arrayContaining(['add_note', 'whoami']));
    const whoami = await notes.client.callTool({ name: 'whoami', arguments: {} });
    expect(JSON.stringify(whoami.content)).toContain(`ending in ${notesToken.slice(-4)}`);

    // One consent page each, naming the upstream being connected.
    for (const [connected, title] of [
      [kanban, 'Kanban board'],
      [notes, 'Notes'],
    ] as const) {
      const consents = connected.provider.person.seen.filter((v) => v.url.pathname === '/authorize' && v.response.status === 200);
      expect(consents).toHaveLength(1);
      expect(consents[0]?.text).toContain(`to ${title}?`);
      expect(connected.provider.authorizations).toBe(1);
    }

    // A token for one upstream is refused by the other: the audiences are kept apart.
    const kanbanToken = kanban.provider.savedTokens?.access_token ?? '';
    const crossed = await fetch(connectorUrl('notes'), {
      method: 'POST',
      headers: { Authorization: `Bearer ${kanbanToken}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(crossed.status).toBe(401);
    expect(crossed.headers.get('WWW-Authenticate')).toContain('error="invalid_token"');

    for (const connected of [kanban, notes]) await connected.client.close();
    await recorder.expectNever(upstreamToken);
    await recorder.expectNever(notesToken);
    const logs = gatewayLogs(need(stack));
    expect(logs.filter((line) => line.includes(upstreamToken) || line.includes(notesToken))).toEqual([]);
    expect(logs.some((line) => line.includes('"upstream":"notes"'))).toBe(true);
  });

  it('issue #19: gives alice (IdP group writers) every kanban tool and bob only the read-only ones', async () => {
    const tools = async (email: string) => {
      const connected = await connectWithOAuth(connectorUrl('kanban'), { email });
      const names = (await connected.client.listTools()).tools.map((t) => t.name);
      const move = await connected.client.callTool({ name: 'move_card', arguments: { card: 999_999, column: 'done' } }).catch((error: unknown) => error);
      await connected.client.close();
      return { names, move };
    };
    const alice = await tools('alice@example.com');
    const bob = await tools('bob@example.com');
    expect(alice.names).toEqual(expect.arrayContaining(['list_boards', 'move_card', 'close_card']));
    expect(bob.names).toContain('list_boards');
    expect(bob.names).not.toContain('move_card');
    expect(bob.names.length).toBeLessThan(alice.names.length);
    // Alice's call reaches the board (which knows no such card); bob's is refused by the gateway.
    expect(alice.move).not.toBeInstanceOf(Error);
    expect(String(bob.move)).toMatch(/-32602.*not available through this gateway/);
  });

  it('speaks both revisions to the demo upstreams: 2026-07-28 with the v2 client, 2025 with the v1 client (issue #18)', async () => {
    const [, bobsNotes = ''] = DEMO_NOTES_TOKENS;
    for (const [name, tool, ownTokens] of [
      ['kanban', 'list_boards', []],
      ['notes', 'whoami', [bobsNotes]],
    ] as const) {
      const modern = await connectV2WithOAuth(connectorUrl(name), { email: 'bob@example.com', ownTokens: [...ownTokens] });
      const legacy = await connectWithOAuth(connectorUrl(name), { email: 'bob@example.com' });
      try {
        expect(modern.client.getNegotiatedProtocolVersion(), name).toBe('2026-07-28');
        expect(modern.exchanges.some((e) => e.rpc === 'initialize')).toBe(false);
        expect(legacy.transport.protocolVersion, name).toMatch(/^2025-/);
        for (const client of [modern.client, legacy.client]) {
          expect((await client.listTools()).tools.map((t) => t.name)).toContain(tool);
          expect((await client.callTool({ name: tool, arguments: {} })).isError ?? false).toBe(false);
        }
      } finally {
        await Promise.allSettled([modern.client.close(), legacy.client.close()]);
      }
    }
  });
});

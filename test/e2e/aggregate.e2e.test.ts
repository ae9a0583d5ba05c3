/**
 * Issue #21: an aggregate through `npm start`'s stack. `/work/mcp` ("Work tools") serves the demo
 * kanban (one shared PAT; read-only for everyone, every tool for the IdP group `writers`) and the
 * demo notes (each person's own token) behind one connector and one sign-in, tools named
 * `<upstream>_<tool>`. The clients: the MCP SDK v1 (2025, sessions), the v2 client (2026-07-28),
 * mcp-remote, and Claude Code's own connection check.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_NOTES_TOKENS } from '../../dev/stack.mjs';
import { addTokenOnConnections } from './support/connections';
import { type Connected, connectWithOAuth } from './support/mcp-client';
import { connectV2WithOAuth } from './support/mcp-client-v2';
import { connectMcpRemote, filesUnder } from './support/mcp-remote';
import { SKIP } from './support/person';
import { Recorder } from './support/recorder';
import { type E2EStack, gatewayLogs, need, startE2EStack } from './support/stack';

const [ALICE_NOTES = '', BOB_NOTES = ''] = DEMO_NOTES_TOKENS;

let stack: E2EStack | undefined;
let workDir: string | undefined;
const recorder = new Recorder();
/** Closed after the file, whatever a test did. */
const open: Array<{ close: () => Promise<void> }> = [];

beforeAll(async () => {
  stack = await startE2EStack();
  workDir = await mkdtemp(join(tmpdir(), 'mcp-gateway-aggregate-'));
});
afterAll(async () => {
  await Promise.allSettled(open.map((o) => o.close()));
  await stack?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
  if (process.env.E2E_VERBOSE) console.error((stack?.logs ?? []).join('\n'));
});

function connectorUrl(name: string): string {
  const url = need(stack).connectors.find((c) => c.name === name)?.url;
  if (!url) throw new Error(`no connector named ${name}`);
  return url;
}
const workUrl = () => connectorUrl('work');

/** What a rejected call was, for the assertions: its JSON-RPC code and message. */
async function refusal(call: Promise<unknown>): Promise<{ code: number | undefined; message: string }> {
  const outcome = await call.then(
    (result) => ({ result }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`the call was answered: ${JSON.stringify(outcome.result).slice(0, 300)}`);
  const error = outcome.error;
  return { code: error instanceof McpError ? error.code : (error as { code?: number }).code, message: String(error) };
}

const textOf = (result: unknown) => JSON.stringify((result as { content?: unknown }).content ?? result);

describe('an aggregate over the kanban and the notes (issue #21)', () => {
  it('MCP SDK v1 (2025): both upstreams’ tools, prefixed; without the notes token its tools are left out and a call names /connections; with it added there, they work', async () => {
    const alice = await connectWithOAuth(workUrl(), { recorder, ownTokens: [SKIP] });
    open.push(alice.client);
    // One sign-in, one consent, naming both upstreams.
    expect(alice.provider.authorizations).toBe(1);
    const consents = alice.provider.person.seen.filter((v) => v.url.pathname === '/authorize' && v.response.status === 200);
    expect(consents).toHaveLength(1);
    expect(consents[0]?.text).toContain('Work tools');
    expect(consents[0]?.text).toContain('Kanban board');
    expect(consents[0]?.text).toContain('Notes');

    // She skipped the notes token at sign-in: instead of the notes' tools, one that says where to add it.
    const listed = (await alice.client.listTools()).tools;
    const before = listed.map((t) => t.name);
    expect(before).toEqual(expect.arrayContaining(['kanban_list_boards', 'kanban_create_card', 'kanban_count_slowly']));
    expect(before.filter((n) => !n.startsWith('kanban_'))).toEqual(['notes_add_token']);
    expect(listed.find((t) => t.name === 'notes_add_token')?.description).toContain('/connections');
    const boards = await alice.client.callTool({ name: 'kanban_list_boards', arguments: {} });
    expect(boards.isError ?? false, textOf(boards)).toBe(false);
    expect(textOf(boards)).toContain('columns');
    // A call to one of them says where to add the token.
    const missing = await refusal(alice.client.callTool({ name: 'notes_add_note', arguments: { text: 'first note' } }));
    expect(missing.message).toContain('/connections');

    await addTokenOnConnections(alice.provider.person, need(stack).urls.gateway, 'notes', ALICE_NOTES);
    const { tools } = await alice.client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['kanban_list_boards', 'kanban_create_card', 'notes_add_note', 'notes_whoami']));
    expect(names.every((n) => n.startsWith('kanban_') || n.startsWith('notes_'))).toBe(true);
    // Each description names the upstream its tool comes from.
    expect(tools.find((t) => t.name === 'kanban_list_boards')?.description).toMatch(/kanban/i);
    expect(tools.find((t) => t.name === 'notes_add_note')?.description).toMatch(/notes/i);
    const added = await alice.client.callTool({ name: 'notes_add_note', arguments: { text: 'alice, through the aggregate' } });
    expect(added.isError ?? false, textOf(added)).toBe(false);
    expect(textOf(added)).toContain('saved as note');
    const whoami = await alice.client.callTool({ name: 'notes_whoami', arguments: {} });
    expect(textOf(whoami)).toContain(`ending in ${ALICE_NOTES.slice(-4)}`);

    await alice.client.close();
  });

  it('gives a 2025 client a session of its own, which DELETE ends', async () => {
    const alice = await connectWithOAuth(workUrl(), { ownTokens: [ALICE_NOTES] });
    open.push(alice.client);
    // The gateway is the MCP server here: the session is its own, not an upstream's.
    const session = alice.transport.sessionId;
    expect(session).toBeTruthy();
    expect((await alice.client.listTools()).tools.length).toBeGreaterThan(0);
    await alice.transport.terminateSession();
    const after = await fetch(workUrl(), {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${alice.provider.savedTokens?.access_token}`,
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        'MCP-Protocol-Version': '2025-11-25',
        'Mcp-Session-Id': session ?? '',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    // Streamable HTTP: a request in an ended session is a 404, and the client starts over.
    expect(after.status).toBe(404);
    await alice.client.close();
  });

  it('MCP SDK v2 (2026-07-28, stateless): both upstreams’ tools, prefixed, and a call to each', async () => {
    // Bob pastes his notes token on the token page the sign-in offers.
    const bob = await connectV2WithOAuth(workUrl(), { email: 'bob@example.com', ownTokens: [BOB_NOTES] });
    open.push(bob.client);
    expect(bob.client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    expect(bob.exchanges.some((e) => e.rpc === 'initialize')).toBe(false);

    const names = (await bob.client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['kanban_list_boards', 'notes_add_note', 'notes_whoami']));
    const boards = await bob.client.callTool({ name: 'kanban_list_boards', arguments: {} });
    expect(boards.isError ?? false, textOf(boards)).toBe(false);
    const added = await bob.client.callTool({ name: 'notes_add_note', arguments: { text: 'bob, through the aggregate' } });
    expect(textOf(added)).toContain('saved as note');
    // His own notebook: alice's note is not in it.
    const notes = await bob.client.callTool({ name: 'notes_list_notes', arguments: {} });
    expect(textOf(notes)).toContain('bob, through the aggregate');
    expect(textOf(notes)).not.toContain('alice, through the aggregate');
    await bob.client.close();
  });

  it('applies each upstream’s policy per person: alice (writers) gets kanban_create_card, bob neither sees nor can call it', async () => {
    const tools = async (email: string, ownTokens: string[]) => {
      const connected = await connectWithOAuth(workUrl(), { email, ownTokens, recorder });
      open.push(connected.client);
      return connected;
    };
    const alice = await tools('alice@example.com', [ALICE_NOTES]);
    const bob = await tools('bob@example.com', [BOB_NOTES]);
    const aliceNames = (await alice.client.listTools()).tools.map((t) => t.name);
    const bobNames = (await bob.client.listTools()).tools.map((t) => t.name);
    expect(aliceNames).toEqual(expect.arrayContaining(['kanban_create_card', 'kanban_move_card', 'kanban_list_boards']));
    expect(bobNames).toContain('kanban_list_boards');
    expect(bobNames).not.toContain('kanban_create_card');
    expect(bobNames).not.toContain('kanban_move_card');
    // The notes upstream has no policy: both get all its tools.
    expect(bobNames.filter((n) => n.startsWith('notes_')).sort()).toEqual(aliceNames.filter((n) => n.startsWith('notes_')).sort());

    const board = boardId(await alice.client.callTool({ name: 'kanban_list_boards', arguments: {} }));
    const title = `from bob ${Date.now()}`;
    const refused = await refusal(bob.client.callTool({ name: 'kanban_create_card', arguments: { board, title } }));
    expect(refused.code).toBe(-32602);
    // The board never got it; alice's own call goes through.
    expect(textOf(await alice.client.callTool({ name: 'kanban_list_cards', arguments: { board } }))).not.toContain(title);
    const created = await alice.client.callTool({ name: 'kanban_create_card', arguments: { board, title: 'from alice' } });
    expect(created.isError ?? false, textOf(created)).toBe(false);
    for (const c of [alice, bob]) await c.client.close();
  });

  it.each([
    ['the aggregate', 'work', 'kanban_count_slowly'],
    ['the plain proxy (the baseline)', 'kanban', 'count_slowly'],
  ])('streams progress through %s: each step arrives before the result, the first well before the last', async (_, connector, tool) => {
    const url = connectorUrl(connector);
    const legacy = await connectWithOAuth(url, { ownTokens: [ALICE_NOTES] });
    open.push(legacy.client);
    const modern = await connectV2WithOAuth(url, { email: 'bob@example.com', ownTokens: [BOB_NOTES] });
    open.push(modern.client);
    const steps = 8;
    const args = { name: tool, arguments: { n: steps } };
    for (const [label, call] of [
      ['v1 (2025)', (onprogress: (p: { progress: number }) => void) => legacy.client.callTool(args, undefined, { onprogress })],
      ['v2 (2026-07-28)', (onprogress: (p: { progress: number }) => void) => modern.client.callTool(args, { onprogress })],
    ] as const) {
      const seen = await timedProgress(call);
      expect(
        seen.progress.map((p) => p.value),
        label,
      ).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
      expect(textOf(seen.result), label).toContain(`counted to ${steps}`);
      const first = seen.progress[0]?.at ?? Number.NaN;
      const last = seen.progress.at(-1)?.at ?? Number.NaN;
      // The upstream counts a step every 100 ms: a buffered answer would bring them all at once, with the result.
      expect(last - first, label).toBeGreaterThan(400);
      expect(seen.resultAt - first, label).toBeGreaterThan(400);
      expect(seen.resultAt, label).toBeGreaterThanOrEqual(last);
    }
    await Promise.allSettled([legacy.client.close(), modern.client.close()]);
  });

  it('mcp-remote (as Claude Desktop runs it) signs in to the aggregate, lists its tools and calls one', { timeout: 120_000 }, async () => {
    const dir = join(need(workDir), 'mcp-remote');
    const remote = await connectMcpRemote(workUrl(), { workDir: dir, recorder, ownTokens: [ALICE_NOTES] });
    open.push(remote);
    expect(remote.authorizationUrl.pathname).toBe('/authorize');
    expect(remote.callbackStatus).toBe(200);
    const names = (await remote.client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['kanban_list_boards', 'kanban_create_card', 'notes_whoami']));
    const whoami = await remote.client.callTool({ name: 'notes_whoami', arguments: {} });
    expect(textOf(whoami)).toContain(`ending in ${ALICE_NOTES.slice(-4)}`);
    await remote.close();
    const stored = await filesUnder(remote.configDir);
    for (const text of [...remote.received, remote.stderr(), ...(await Promise.all(stored.map((f) => readFile(f, 'utf8'))))]) recorder.keepText(text);
  });

  it.skipIf(!claudeBin()).each([
    ['the aggregate', 'work'],
    ['the plain proxy (the baseline)', 'kanban'],
  ])('Claude Code adds %s, and its connection check (`claude mcp list`) passes with a token', { timeout: 90_000 }, async (_, connector) => {
    const url = connectorUrl(connector);
    const home = join(need(workDir), `claude-home-${connector}`);
    await mkdir(home, { recursive: true });
    const claude = (...args: string[]) => runClaude(home, args);
    const listed = (name: string, output: string) => output.split('\n').find((line) => line.startsWith(`${name}: ${url} (HTTP)`)) ?? output;
    // Without a token: the gateway's 401 challenge, which Claude Code reads as "needs authentication".
    await claude('mcp', 'add', '--transport', 'http', connector, url);
    expect(listed(connector, await claude('mcp', 'list'))).toMatch(/Needs authentication/);
    // Its own sign-in (`claude mcp login`) needs a terminal and claude.ai's client metadata
    // document, which this machine cannot fetch: a token from a headless sign-in stands in for it.
    const signedIn: Connected = await connectWithOAuth(url, { email: 'bob@example.com', ownTokens: [BOB_NOTES] });
    open.push(signedIn.client);
    const token = signedIn.provider.savedTokens?.access_token ?? '';
    await claude('mcp', 'add', '--transport', 'http', 'signed-in', url, '--header', `Authorization: Bearer ${token}`);
    expect(listed('signed-in', await claude('mcp', 'list'))).toMatch(/ - \S+ Connected$/);
  });

  it('logs each call through the aggregate with the aggregate, the upstream and the tool', async () => {
    const bob = await connectV2WithOAuth(workUrl(), { email: 'bob@example.com', ownTokens: [BOB_NOTES] });
    open.push(bob.client);
    await bob.client.callTool({ name: 'kanban_get_card', arguments: { card: 424_242 } });
    await bob.client.close();
    const calls = gatewayLogs(need(stack))
      .filter((line) => line.includes('"event":"mcp_proxy"') && line.includes('"rpcMethod":"tools/call"') && line.includes('get_card'))
      .map((line) => JSON.parse(line.slice(line.indexOf('{'))) as Record<string, unknown>);
    expect(calls.at(-1)).toMatchObject({ aggregate: 'work', upstream: 'kanban', email: 'bob@example.com' });
    expect(String(calls.at(-1)?.tool)).toMatch(/get_card$/);
  });

  it('never shows an upstream token to a client, a person or the log', async () => {
    const { upstreamToken } = need(stack);
    for (const secret of [upstreamToken, ALICE_NOTES, BOB_NOTES]) await recorder.expectNever(secret);
    const logs = gatewayLogs(need(stack));
    expect(logs.filter((line) => line.includes(upstreamToken) || line.includes(ALICE_NOTES) || line.includes(BOB_NOTES))).toEqual([]);
  });
});

/** The demo board's id, from kanban_list_boards. */
function boardId(result: unknown): string {
  const text = (result as { content: Array<{ text?: string }> }).content[0]?.text ?? '';
  const id = (JSON.parse(text) as Array<{ id: string }>)[0]?.id;
  if (!id) throw new Error(`no board in ${text.slice(0, 200)}`);
  return id;
}

/** Runs a call with a progress handler; when each progress notification and the result arrived (ms). */
async function timedProgress(call: (onprogress: (p: { progress: number }) => void) => Promise<unknown>) {
  const started = performance.now();
  const progress: Array<{ value: number; at: number }> = [];
  const result = await call((p) => progress.push({ value: p.progress, at: performance.now() - started }));
  return { progress, result, resultAt: performance.now() - started };
}

/** Claude Code's binary, when the devDependency is installed. */
function claudeBin(): string | undefined {
  try {
    const bin = join(dirname(createRequire(import.meta.url).resolve('@anthropic-ai/claude-code/package.json')), 'bin', 'claude.exe');
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

/** `claude <args>` with a HOME of its own (its settings and nothing of this user's), offline. */
async function runClaude(home: string, args: string[]): Promise<string> {
  const { stdout, stderr } = await promisify(execFile)(claudeBin() ?? 'claude', args, {
    cwd: tmpdir(),
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? '', HOME: home, DISABLE_AUTOUPDATER: '1', CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' },
  });
  return `${stdout}${stderr}`;
}

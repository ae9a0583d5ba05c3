/**
 * mcp-remote as Claude Desktop runs it (`npx mcp-remote <gateway>/mcp`, spoken to over stdio):
 * it discovers the gateway's OAuth, registers, opens "a browser" for the person to sign in, takes
 * the code at its own loopback callback and then proxies MCP (support/mcp-remote.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMcpRemote, filesUnder, type McpRemote } from './support/mcp-remote';
import { Recorder } from './support/recorder';
import { type E2EStack, need, startE2EStack } from './support/stack';

const upstreamToken = `kanban-pat-${randomBytes(16).toString('hex')}`;

let stack: E2EStack | undefined;
let workDir: string | undefined;
let remote: McpRemote | undefined;
const recorder = new Recorder();

beforeAll(async () => {
  stack = await startE2EStack({ upstreamToken });
  workDir = await mkdtemp(join(tmpdir(), 'mcp-remote-e2e-'));
});

afterAll(async () => {
  await remote?.close();
  await stack?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
  if (process.env.E2E_VERBOSE) console.error(`${(stack?.logs ?? []).join('\n')}\nmcp-remote stderr:\n${remote?.stderr() ?? ''}`);
});

describe('mcp-remote (as Claude Desktop runs it)', () => {
  it('completes its OAuth flow through the browser, lists tools and calls one', { timeout: 120_000 }, async () => {
    const mcp = need(stack).urls.mcp;
    remote = await connectMcpRemote(mcp, { workDir: need(workDir), recorder });
    const { client, authorizationUrl, outcome, callbackStatus, configDir, received, stderr } = remote;
    expect(authorizationUrl.origin).toBe(new URL(mcp).origin);
    expect(authorizationUrl.pathname).toBe('/authorize');
    expect(outcome.kind === 'redirect' && outcome.url.searchParams.get('code')).toBeTruthy();
    expect(callbackStatus).toBe(200);
    expect(client.getServerVersion()?.name).toBeTruthy();

    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['list_boards', 'create_card', 'move_card']));
    const result = await client.callTool({ name: 'list_boards', arguments: {} });
    expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
    expect(JSON.stringify(result.content).length).toBeGreaterThan(10);

    // Its tokens went to MCP_REMOTE_CONFIG_DIR.
    const stored = await filesUnder(configDir);
    expect(
      stored.some((f) => f.endsWith('tokens.json')),
      stored.join(', '),
    ).toBe(true);

    // Item 7: the PAT is nowhere mcp-remote, its host or the person could see it.
    await remote.close();
    for (const text of [...received, stderr(), ...(await Promise.all(stored.map((f) => readFile(f, 'utf8'))))]) recorder.keepText(text);
    expect(received.join('\n')).toContain('list_boards');
    expect(stderr()).toContain(authorizationUrl.origin);
    expect(stderr().includes(upstreamToken), 'the upstream token reached mcp-remote').toBe(false);
    await recorder.expectNever(upstreamToken);
  });
});

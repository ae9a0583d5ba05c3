/**
 * mcp-remote as Claude Desktop runs it (`npx mcp-remote <gateway>/mcp`, spoken to over stdio):
 * it discovers the gateway's OAuth, registers, opens "a browser" for the person to sign in, takes
 * the code at its own loopback callback and then proxies MCP. The browser is a script named in
 * BROWSER (which `open`'s xdg-open honours) that hands the URL to this test, where `Person`
 * signs in and follows the redirect to mcp-remote's callback, as a browser would.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../dev/lib/ports.mjs';
import { Person } from './support/person';
import { Recorder } from './support/recorder';
import { type E2EStack, startE2EStack } from './support/stack';

const require = createRequire(import.meta.url);
const MCP_REMOTE_BIN = join(dirname(require.resolve('mcp-remote/package.json')), 'dist', 'proxy.js');
const upstreamToken = `kanban-pat-${randomBytes(16).toString('hex')}`;

let stack: E2EStack | undefined;
let workDir: string | undefined;
let transport: StdioClientTransport | undefined;
let client: Client | undefined;
let stderr = '';
const recorder = new Recorder();

beforeAll(async () => {
  stack = await startE2EStack({ upstreamToken });
  workDir = await mkdtemp(join(tmpdir(), 'mcp-remote-e2e-'));
});

afterAll(async () => {
  const pid = transport?.pid;
  await client?.close().catch(() => {});
  await transport?.close().catch(() => {});
  if (pid) await ensureGone(pid);
  await stack?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
  if (process.env.E2E_VERBOSE) console.error(`${(stack?.logs ?? []).join('\n')}\nmcp-remote stderr:\n${stderr}`);
});

describe('mcp-remote (as Claude Desktop runs it)', () => {
  it('completes its OAuth flow through the browser, lists tools and calls one', { timeout: 120_000 }, async () => {
    const dir = need(workDir);
    const mcp = need(stack).urls.mcp;
    const configDir = join(dir, 'mcp-auth');
    const browserLog = join(dir, 'browser-urls.txt');
    const browser = join(dir, 'browser.sh');
    await writeFile(browser, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${browserLog}'\n`);
    await chmod(browser, 0o755);
    const callbackPort = await findFreePort();

    const stdio = new StdioClientTransport({
      command: process.execPath,
      args: [MCP_REMOTE_BIN, mcp, String(callbackPort)],
      env: {
        // Its token store and nothing else of this user's home.
        HOME: dir,
        MCP_REMOTE_CONFIG_DIR: configDir,
        // `open` runs its bundled xdg-open, which, outside a desktop session, runs $BROWSER.
        BROWSER: browser,
        XDG_CURRENT_DESKTOP: 'X-Generic',
      },
      stderr: 'pipe',
    });
    transport = stdio;
    stdio.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const received: string[] = [];
    client = new Client({ name: 'claude-desktop-e2e', version: '1.0.0' });
    // Answers only once mcp-remote has signed in and connected upstream.
    const connecting = client.connect(new RecordingTransport(stdio, (text) => received.push(text)), { timeout: 90_000 });
    connecting.catch(() => {});
    // Stops the wait below early if mcp-remote fails (or, wrongly, connects) before any sign-in.
    const settledEarly = connecting.then(() => {
      throw new Error('connected without signing in');
    });
    settledEarly.catch(() => {});

    const authorizationUrl = await Promise.race([waitForAuthorizationUrl(browserLog, () => stderr), settledEarly]);
    expect(authorizationUrl.origin).toBe(new URL(mcp).origin);
    expect(authorizationUrl.pathname).toBe('/authorize');

    const callback = (url: URL) => url.port === String(callbackPort) && url.pathname === '/oauth/callback';
    const person = new Person('alice@example.com', callback);
    recorder.watch(person);
    const outcome = await person.signIn(authorizationUrl);
    if (outcome.kind !== 'redirect') throw new Error(`sign-in stopped at a ${outcome.status} page: ${outcome.text.slice(0, 300)}`);
    expect(outcome.url.searchParams.get('code')).toBeTruthy();
    // The browser follows the redirect to mcp-remote's callback server.
    const delivered = await recorder.fetch(outcome.url);
    expect(delivered.status).toBe(200);

    await connecting;
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
    await client.close();
    for (const text of [...received, stderr, ...(await Promise.all(stored.map((f) => readFile(f, 'utf8'))))]) recorder.keepText(text);
    expect(received.join('\n')).toContain('list_boards');
    expect(stderr).toContain(authorizationUrl.origin);
    expect(stderr.includes(upstreamToken), 'the upstream token reached mcp-remote').toBe(false);
    await recorder.expectNever(upstreamToken);
  });
});

/** Hands every message mcp-remote sent on stdout to `record` before the client sees it. */
class RecordingTransport implements Transport {
  onmessage?: Transport['onmessage'];
  onclose?: () => void;
  onerror?: (error: Error) => void;

  constructor(
    private readonly inner: StdioClientTransport,
    record: (text: string) => void,
  ) {
    inner.onmessage = (message) => {
      record(JSON.stringify(message));
      this.onmessage?.(message);
    };
    inner.onclose = () => this.onclose?.();
    inner.onerror = (error) => {
      record(String(error));
      this.onerror?.(error);
    };
  }

  start() {
    return this.inner.start();
  }
  send(message: JSONRPCMessage) {
    return this.inner.send(message);
  }
  close() {
    return this.inner.close();
  }
}

/** The URL "the browser" was asked to open; mcp-remote's own stderr line where BROWSER is not honoured (macOS). */
async function waitForAuthorizationUrl(browserLog: string, stderr: () => string, timeoutMs = 45_000): Promise<URL> {
  const deadline = Date.now() + timeoutMs;
  let printedAt: number | undefined;
  while (Date.now() < deadline) {
    const opened = (await readFile(browserLog, 'utf8').catch(() => '')).split('\n')[0];
    if (opened) return new URL(opened);
    const printed = /Please authorize this client by visiting:\s*(\S+)/.exec(stderr())?.[1];
    if (printed) {
      printedAt ??= Date.now();
      if (process.platform !== 'linux' || Date.now() - printedAt > 5_000) return new URL(printed);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`mcp-remote asked for no sign-in within ${timeoutMs / 1000} s; its stderr:\n${stderr()}`);
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** mcp-remote must be gone after close(); SIGKILL it if not, and fail loudly. */
async function ensureGone(pid: number): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 150 && alive(); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  if (alive()) {
    process.kill(pid, 'SIGKILL');
    throw new Error(`mcp-remote (pid ${pid}) was still running after close()`);
  }
}

function need<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('the stack did not start');
  return value;
}

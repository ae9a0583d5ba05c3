/**
 * mcp-remote as Claude Desktop runs it (`npx mcp-remote <gateway>/<name>/mcp`, spoken to over
 * stdio): it discovers the gateway's OAuth, registers, opens "a browser" for the person to sign
 * in, takes the code at its own loopback callback and then proxies MCP. The browser is a script
 * named in BROWSER (which `open`'s xdg-open honours) that hands the URL to the test, where
 * `Person` signs in and follows the redirect to mcp-remote's callback, as a browser would.
 */
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { findFreePort } from '../../../dev/lib/ports.mjs';
import { type Outcome, type OwnToken, Person } from './person';
import type { Recorder } from './recorder';

const require = createRequire(import.meta.url);
const MCP_REMOTE_BIN = join(dirname(require.resolve('mcp-remote/package.json')), 'dist', 'proxy.js');

export interface McpRemote {
  client: Client;
  /** The URL mcp-remote asked "the browser" to open. */
  authorizationUrl: URL;
  /** Where the person's sign-in ended: mcp-remote's callback, with the code. */
  outcome: Outcome;
  /** The status mcp-remote's callback server answered the browser with. */
  callbackStatus: number;
  /** Where mcp-remote keeps its tokens (MCP_REMOTE_CONFIG_DIR). */
  configDir: string;
  /** Every message mcp-remote sent on stdout, as JSON. */
  received: string[];
  stderr: () => string;
  /** Closes the client and makes sure mcp-remote is gone (SIGKILL and a failure if not). */
  close: () => Promise<void>;
}

export interface McpRemoteOptions {
  /** A folder of its own: mcp-remote's HOME and token store. */
  workDir: string;
  email?: string;
  /** Tokens the person pastes, in turn, when the gateway asks for their own. */
  ownTokens?: OwnToken[];
  recorder?: Recorder;
}

/** Starts mcp-remote on `url`, signs the person in when it asks, and resolves once it is connected. */
export async function connectMcpRemote(url: string, options: McpRemoteOptions): Promise<McpRemote> {
  const dir = options.workDir;
  await mkdir(dir, { recursive: true });
  const configDir = join(dir, 'mcp-auth');
  const browserLog = join(dir, 'browser-urls.txt');
  const browser = join(dir, 'browser.sh');
  await writeFile(browser, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${browserLog}'\n`);
  await chmod(browser, 0o755);
  const callbackPort = await findFreePort();

  const stdio = new StdioClientTransport({
    command: process.execPath,
    args: [MCP_REMOTE_BIN, url, String(callbackPort)],
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
  let stderr = '';
  stdio.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const received: string[] = [];
  const client = new Client({ name: 'claude-desktop-e2e', version: '1.0.0' });
  const close = async () => {
    const pid = stdio.pid;
    await client.close().catch(() => {});
    await stdio.close().catch(() => {});
    if (pid) await ensureGone(pid);
  };
  try {
    // Answers only once mcp-remote has signed in and connected upstream.
    const connecting = client.connect(new RecordingTransport(stdio, (text) => received.push(text)), { timeout: 90_000 });
    connecting.catch(() => {});
    // Stops the wait below early if mcp-remote fails (or, wrongly, connects) before any sign-in.
    const settledEarly = connecting.then(() => {
      throw new Error('connected without signing in');
    });
    settledEarly.catch(() => {});

    const authorizationUrl = await Promise.race([waitForAuthorizationUrl(browserLog, () => stderr), settledEarly]);
    const callback = (u: URL) => u.port === String(callbackPort) && u.pathname === '/oauth/callback';
    const person = new Person(options.email ?? 'alice@example.com', callback);
    person.tokensToPaste = [...(options.ownTokens ?? [])];
    options.recorder?.watch(person);
    const outcome = await person.signIn(authorizationUrl);
    if (outcome.kind !== 'redirect') throw new Error(`sign-in stopped at a ${outcome.status} page: ${outcome.text.slice(0, 300)}`);
    // The browser follows the redirect to mcp-remote's callback server.
    const delivered = await (options.recorder?.fetch ?? fetch)(outcome.url);
    await delivered.arrayBuffer();

    await connecting;
    return { client, authorizationUrl, outcome, callbackStatus: delivered.status, configDir, received, stderr: () => stderr, close };
  } catch (error) {
    await close().catch(() => {});
    throw new Error(`${error instanceof Error ? error.message : String(error)}\nmcp-remote stderr:\n${stderr}`, { cause: error });
  }
}

/** Every file under `dir`, recursively (mcp-remote's token store). */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

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

/**
 * The MCP reference server "everything" (@modelcontextprotocol/server-everything) as an upstream:
 * a child Node process on a free loopback port, in Streamable HTTP mode (`/mcp`, resumable with an
 * in-memory event store) or in the older HTTP+SSE mode (`GET /sse`, `POST /message?sessionId=`).
 * It accepts any request without checking credentials; the gateway in front of it still sends one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { findFreePort } from '../../../dev/lib/ports.mjs';

const require = createRequire(import.meta.url);
const EVERYTHING_BIN = join(dirname(require.resolve('@modelcontextprotocol/server-everything/package.json')), 'dist', 'index.js');
const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 3_000;

export type EverythingMode = 'streamableHttp' | 'sse';

export interface Everything {
  mode: EverythingMode;
  port: number;
  /** The MCP endpoint to front: `http://127.0.0.1:<port>/mcp` or `.../sse`. */
  url: string;
  pid: number;
  /** Every output line so far, for debugging a failure. */
  logs: string[];
  /** Ends the process group and waits until nothing of it is left; safe to call twice. */
  stop: () => Promise<void>;
}

export async function startEverything(mode: EverythingMode, options: { onLog?: (line: string) => void } = {}): Promise<Everything> {
  const port = await findFreePort();
  const logs: string[] = [];
  // Its own process group so stop() reaches anything it starts; a minimal environment because its
  // `get-env` tool hands the whole environment to any client.
  const child = spawn(process.execPath, [EVERYTHING_BIN, mode], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PORT: String(port), NODE_ENV: 'test' },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('server-everything did not start');
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
      logs.push(line);
      options.onLog?.(line);
    });
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= stopGroup(pid, child, exited);
    return stopping;
  };

  try {
    await waitUntilListening(port, child, logs);
  } catch (error) {
    await stop();
    throw error;
  }
  return { mode, port, url: `http://127.0.0.1:${port}/${mode === 'sse' ? 'sse' : 'mcp'}`, pid, logs, stop };
}

/** Until a TCP connection to the port succeeds (its SSE mode has no route that answers without a session). */
async function waitUntilListening(port: number, child: ChildProcess, logs: string[]): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server-everything exited while starting:\n${logs.slice(-20).join('\n')}`);
    }
    if (await canConnect(port)) return;
    await sleep(100);
  }
  throw new Error(`server-everything was not listening on ${port} within ${READY_TIMEOUT_MS / 1000} s:\n${logs.slice(-20).join('\n')}`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** SIGTERM to the group, then SIGKILL to whatever is left after a grace period. */
async function stopGroup(pgid: number, child: ChildProcess, exited: Promise<void>): Promise<void> {
  signalGroup(pgid, 'SIGTERM');
  await Promise.race([exited, sleep(STOP_GRACE_MS)]);
  const deadline = Date.now() + STOP_GRACE_MS;
  while (groupAlive(pgid) && Date.now() < deadline) {
    signalGroup(pgid, 'SIGKILL');
    await sleep(50);
  }
  child.stdout?.destroy();
  child.stderr?.destroy();
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

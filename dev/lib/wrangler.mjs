// @ts-check
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

const require = createRequire(import.meta.url);
const WRANGLER_BIN = join(dirname(require.resolve('wrangler/package.json')), 'bin', 'wrangler.js');
const STOP_GRACE_MS = 5_000;

/**
 * @typedef {object} WranglerProcess
 * @property {number} pid  also the id of its process group
 * @property {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} exited
 * @property {() => Promise<void>} stop  ends wrangler and every process it started
 */

/**
 * Runs `wrangler dev` with the Node running this script (wrangler needs 22; the machine's may be
 * older), in a process group of its own: wrangler starts workerd, which outlives a signal sent
 * to wrangler alone, so `stop()` signals the whole group.
 * @param {{ args: string[], cwd: string, onLine: (line: string) => void }} options
 * @returns {WranglerProcess}
 */
export function startWrangler({ args, cwd, onLine }) {
  const child = spawn(process.execPath, [WRANGLER_BIN, 'dev', ...args], {
    cwd,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      // No internet: don't fetch request metadata or send metrics at start.
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      WRANGLER_SEND_METRICS: 'false',
    },
  });
  const pid = /** @type {number} */ (child.pid);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', onLine);
  }
  /** @type {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} */
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  let stopping;
  const stop = () => {
    stopping ??= stopGroup(pid, exited);
    return stopping;
  };
  return { pid, exited, stop };
}

/** SIGTERM to the group, SIGKILL after a grace period, then wait until no member is left. */
async function stopGroup(/** @type {number} */ pgid, /** @type {Promise<unknown>} */ exited) {
  signalGroup(pgid, 'SIGTERM');
  const deadline = Date.now() + STOP_GRACE_MS;
  await Promise.race([exited, sleep(STOP_GRACE_MS)]);
  // wrangler may be gone while workerd, in the same group, is still shutting down. The wait is
  // bounded: an orphan that has exited but that nobody reaped yet (a zombie) still counts as alive.
  while (groupAlive(pgid) && Date.now() < deadline + STOP_GRACE_MS) {
    if (Date.now() > deadline) signalGroup(pgid, 'SIGKILL');
    await sleep(50);
  }
}

function signalGroup(/** @type {number} */ pgid, /** @type {NodeJS.Signals} */ signal) {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if (/** @type {NodeJS.ErrnoException} */ (error).code !== 'ESRCH') throw error;
  }
}

function groupAlive(/** @type {number} */ pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return /** @type {NodeJS.ErrnoException} */ (error).code === 'EPERM';
  }
}

const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Applies migrations/ to the local D1 the gateway's `wrangler dev` will use (same config, same
 * --persist-to): the audit trail's tables, before the first request. Rejects with wrangler's output.
 * @param {{ config: string, persistTo: string, cwd: string }} options
 * @returns {Promise<void>}
 */
export function applyLocalD1Migrations({ config, persistTo, cwd }) {
  return new Promise((resolve, reject) => {
    const args = [WRANGLER_BIN, 'd1', 'migrations', 'apply', 'AUDIT_DB', '--local', '--config', config, '--persist-to', persistTo];
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`wrangler d1 migrations apply failed (exit ${code}):\n${output}`))));
  });
}

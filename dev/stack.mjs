// @ts-check
/**
 * The local system behind `npm start`, startable from code so end-to-end tests can run it on free
 * ports and stop it: a stand-in for Cloudflare Access (in this process), the demo kanban MCP server
 * that only accepts a PAT (its own `wrangler dev`), and the gateway (`wrangler dev` of the repo)
 * configured to front it.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startAccessStandIn } from './access/server.mjs';
import { assertPortFree, findFreePort } from './lib/ports.mjs';
import { applyLocalD1Migrations, startWrangler } from './lib/wrangler.mjs';

/** @typedef {import('./access/login-page.mjs').DemoUser} DemoUser */
/** @typedef {'access' | 'upstream' | 'gateway'} Part */

const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** Both Workers' KV and Durable Object data, kept across restarts. */
export const DEFAULT_STATE_DIR = join(REPO, '.wrangler', 'dev-state');

export const DEFAULT_PORTS = Object.freeze({ gateway: 8787, access: 8788, upstream: 8789 });

/**
 * Sign-in works for anyone; the gateway's ALLOWED_EMAILS lets in only the `allowed` ones. Alice is
 * in the IdP group `writers`, which may use every kanban tool at /kanban/mcp; everyone else reads.
 */
export const DEMO_USERS = Object.freeze([
  { email: 'alice@example.com', name: 'Alice Example', allowed: true, groups: ['writers'] },
  { email: 'bob@example.com', name: 'Bob Example', allowed: true },
  { email: 'mallory@example.net', name: 'Mallory Outsider', allowed: false },
]);

/** The one token the demo kanban upstream accepts. A demo value, printed on purpose; not a secret. */
export const DEMO_UPSTREAM_TOKEN = 'demo-kanban-pat-1234567890';

/**
 * The tokens the demo notes upstream accepts, each its own notebook. The gateway asks each person
 * for theirs (`userSupplied`): demo values, printed on purpose.
 */
export const DEMO_NOTES_TOKENS = Object.freeze(['demo-notes-alice-1111', 'demo-notes-bob-2222']);

export const ACCESS_CLIENT_ID = 'local-access-app';

/**
 * The name the gateway is printed and reached under (it listens on 127.0.0.1 only). Headless
 * Chromium keeps the gateway's `__Host-` (Secure) cookies over plain http on both `localhost` and
 * `127.0.0.1`; `localhost` is the name loopback MCP clients use. Print one name only: each origin
 * gets its own resource URL and tokens, so mixing the two in one session fails.
 */
export const GATEWAY_HOST = 'localhost';

const READY_TIMEOUT_MS = 60_000;
const LOG_TAIL = 40;

/**
 * @typedef {object} StackOptions
 * @property {number} [gatewayPort]  default 8787; 0 picks a free port
 * @property {number} [accessPort]   default 8788; 0 picks a free port
 * @property {number} [upstreamPort] default 8789; 0 picks a free port
 * @property {readonly DemoUser[]} [users]  listed on the sign-in page; default DEMO_USERS
 * @property {readonly string[]} [allowedEmails]  the gateway's ALLOWED_EMAILS; default the `allowed` users
 * @property {string} [upstreamToken]  the PAT the demo kanban upstream accepts and the gateway sends
 * @property {readonly string[]} [notesTokens]  the tokens the demo notes upstream accepts (people paste their own)
 * @property {string} [upstreamUrl]  front this MCP endpoint instead of starting the demo upstream
 * @property {Record<string, string>} [gatewayVars]  more gateway settings (e.g. ACCESS_TOKEN_TTL), last word
 * @property {string} [accessClientSecret]  the stand-in Access app's client secret; default random
 * @property {(standIns: StandIns) => Promise<string>} [gatewayEnvFile]  the gateway's settings file,
 *   made once the stand-in Access and the upstream answer (e.g. by `npm run setup`); replaces the
 *   generated settings, so `gatewayVars` and `allowedEmails` do not apply
 * @property {string} [stateDir]  where both Workers keep KV and Durable Object data; default .wrangler/dev-state
 * @property {(part: Part, line: string) => void} [onLog]  every output line of the three parts
 * @property {(part: Part, detail: string) => void} [onUnexpectedExit]  a part stopped without stop()
 * @property {number} [readyTimeoutMs]
 * @property {AbortSignal} [signal]  abandons the start: what was started is stopped, and it rejects
 */

/**
 * @typedef {object} Stack
 * @property {{ gateway: number, access: number, upstream: number | undefined }} ports
 * @property {{ gateway: string, mcp: string, health: string, upstreamMcp: string,
 *   access: { issuer: string, authorization: string, token: string, jwks: string, discovery: string } }} urls
 * @property {Connector[]} connectors  every connector URL the gateway serves, `/mcp` first
 * @property {readonly DemoUser[]} users
 * @property {readonly string[]} allowedEmails
 * @property {string} upstreamToken
 * @property {() => Promise<void>} stop  stops every process it started; safe to call twice
 */

/**
 * @typedef {object} StandIns
 * @property {{ issuer: string, clientId: string, clientSecret: string }} access
 * @property {string} upstreamMcp
 * @property {Connector[]} connectors
 */

/**
 * @typedef {object} Connector
 * @property {string} name  `mcp` for the single upstream, else its UPSTREAMS or AGGREGATES name
 * @property {string} title
 * @property {string} url  the gateway URL to give an MCP client
 * @property {string} [upstreamUrl]  where the gateway forwards it; none for an aggregate
 * @property {string[]} [upstreams]  an aggregate's upstreams, by connector name
 */

/** A part failed to start; `logs` holds its last output lines. */
export class StackStartError extends Error {
  /** @param {string} message @param {string[]} [logs] */
  constructor(message, logs = []) {
    super(message);
    this.name = 'StackStartError';
    this.logs = logs;
  }
}

/**
 * Starts the three parts and resolves once each answers. Throws `PortBusyError` (before starting
 * anything) for a taken port, `StackStartError` when a part fails; nothing is left running then.
 * @param {StackOptions} [options]
 * @returns {Promise<Stack>}
 */
export async function startStack(options = {}) {
  const users = options.users ?? DEMO_USERS;
  const allowedEmails = options.allowedEmails ?? users.filter((u) => u.allowed).map((u) => u.email);
  const upstreamToken = options.upstreamToken ?? DEMO_UPSTREAM_TOKEN;
  const stateDir = resolve(options.stateDir ?? DEFAULT_STATE_DIR);
  const demoUpstream = options.upstreamUrl === undefined;

  const ports = {
    gateway: await claimPort('gateway', options.gatewayPort ?? DEFAULT_PORTS.gateway),
    access: await claimPort('sign-in provider', options.accessPort ?? DEFAULT_PORTS.access),
    upstream: demoUpstream ? await claimPort('demo upstream', options.upstreamPort ?? DEFAULT_PORTS.upstream) : undefined,
  };
  const gatewayOrigin = `http://${GATEWAY_HOST}:${ports.gateway}`;
  const upstreamMcp = options.upstreamUrl ?? `http://127.0.0.1:${ports.upstream}/mcp`;
  const notesTokens = options.notesTokens ?? DEMO_NOTES_TOKENS;
  /** @type {Connector[]} */
  const connectors = [{ name: 'mcp', title: demoUpstream ? 'Kanban, at /mcp' : 'MCP server', url: `${gatewayOrigin}/mcp`, upstreamUrl: upstreamMcp }];
  if (demoUpstream) {
    // The demo stack also shows several upstreams behind one gateway: the same kanban at
    // /kanban/mcp, the notes server at /notes/mcp, and both as one connector at /work/mcp.
    connectors.push(
      { name: 'kanban', title: 'Kanban board', url: `${gatewayOrigin}/kanban/mcp`, upstreamUrl: upstreamMcp },
      { name: 'notes', title: 'Notes', url: `${gatewayOrigin}/notes/mcp`, upstreamUrl: `http://127.0.0.1:${ports.upstream}/notes/mcp` },
      { name: 'work', title: 'Work tools', url: `${gatewayOrigin}/work/mcp`, upstreams: ['kanban', 'notes'] },
    );
  }

  /** @type {Record<Part, string[]>} */
  const tails = { access: [], upstream: [], gateway: [] };
  const onLine = (/** @type {Part} */ part) => (/** @type {string} */ line) => {
    tails[part].push(line);
    if (tails[part].length > LOG_TAIL) tails[part].shift();
    options.onLog?.(part, line);
  };

  /** @type {Array<() => Promise<void>>} */
  const stoppers = [];
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.allSettled(stoppers.map((s) => s()));
  };

  try {
    const secretsDir = await mkdtemp(join(tmpdir(), 'mcp-gateway-dev-'));
    stoppers.push(() => rm(secretsDir, { recursive: true, force: true }));

    const accessClientSecret = options.accessClientSecret ?? randomBytes(24).toString('hex');
    const access = await startAccessStandIn({
      port: ports.access,
      clientId: ACCESS_CLIENT_ID,
      clientSecret: accessClientSecret,
      // Either name reaches the gateway; the redirect names the one the browser used.
      redirectUris: [`http://localhost:${ports.gateway}/callback`, `http://127.0.0.1:${ports.gateway}/callback`],
      users,
      log: onLine('access'),
    });
    stoppers.push(access.close);

    /** @param {Part} part @param {string[]} args */
    const startPart = (part, args) => {
      if (options.signal?.aborted) throw new StackStartError('start abandoned');
      const proc = startWrangler({ args, cwd: REPO, onLine: onLine(part) });
      stoppers.push(proc.stop);
      proc.exited.then(({ code, signal }) => {
        if (!stopping) options.onUnexpectedExit?.(part, signal ? `killed by ${signal}` : `exited with code ${code}`);
      });
      return proc;
    };

    /** @type {Promise<void>[]} */
    const ready = [];
    if (ports.upstream !== undefined) {
      const envFile = await writeEnvFile(secretsDir, 'upstream.env', { DEMO_PAT: upstreamToken, DEMO_NOTES_TOKENS: notesTokens.join(',') });
      const proc = startPart('upstream', [
        ...['--config', join(REPO, 'dev', 'upstream', 'wrangler.jsonc')],
        ...(await listenArgs(ports.upstream)),
        ...['--env-file', envFile, '--persist-to', join(stateDir, 'upstream')],
      ]);
      // A 401 without the PAT proves it is our upstream answering, not whatever else might.
      ready.push(waitFor('upstream', proc, `${upstreamMcp}`, (r) => r.status === 401, { method: 'POST' }, options, tails));
    }

    const gatewayEnv = {
      ACCESS_CLIENT_ID,
      ACCESS_CLIENT_SECRET: accessClientSecret,
      ACCESS_AUTHORIZATION_URL: access.urls.authorization,
      ACCESS_TOKEN_URL: access.urls.token,
      ACCESS_JWKS_URL: access.urls.jwks,
      COOKIE_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
      ALLOWED_EMAILS: allowedEmails.join(','),
      // The stand-in Access sends the demo people's groups only when asked, as Access does.
      ACCESS_SCOPES: 'openid email profile groups',
      UPSTREAM_URL: upstreamMcp,
      UPSTREAM_TOKEN: upstreamToken,
      ...(demoUpstream ? demoUpstreams(connectors, upstreamToken) : {}),
      ...options.gatewayVars,
    };
    // Settings go through --env-file: wrangler then ignores a .dev.vars the developer may keep,
    // and secrets stay off command lines that `ps` shows.
    let envFile;
    if (options.gatewayEnvFile) {
      // The settings may be made by checking the stand-ins: wait until they answer.
      await Promise.all(ready);
      envFile = await options.gatewayEnvFile({
        access: { issuer: access.issuer, clientId: ACCESS_CLIENT_ID, clientSecret: accessClientSecret },
        upstreamMcp,
        connectors,
      });
    } else {
      envFile = await writeEnvFile(secretsDir, 'gateway.env', gatewayEnv);
    }
    // The audit trail's tables in the local D1 (docs/audit.md), as `wrangler d1 migrations apply --remote` makes them in production.
    await applyLocalD1Migrations({ config: join(REPO, 'wrangler.jsonc'), persistTo: join(stateDir, 'gateway'), cwd: REPO });
    const gateway = startPart('gateway', [
      ...['--config', join(REPO, 'wrangler.jsonc')],
      ...(await listenArgs(ports.gateway)),
      ...['--env-file', envFile, '--persist-to', join(stateDir, 'gateway')],
    ]);
    ready.push(waitFor('gateway', gateway, `http://127.0.0.1:${ports.gateway}/health`, healthy, {}, options, tails));

    await Promise.all(ready);
    return {
      ports,
      urls: {
        gateway: gatewayOrigin,
        mcp: `${gatewayOrigin}/mcp`,
        health: `${gatewayOrigin}/health`,
        upstreamMcp,
        access: { issuer: access.issuer, ...access.urls },
      },
      connectors,
      users,
      allowedEmails,
      upstreamToken,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * UPSTREAMS and AGGREGATES for the demo: the kanban's token comes from a variable of its own, as a
 * deployment keeps it in a secret; the notes server takes each person's own token; the aggregate
 * `work` serves both behind one connector, each upstream with its own credential and policy.
 * @param {Connector[]} connectors @param {string} kanbanToken
 */
function demoUpstreams(connectors, kanbanToken) {
  const url = (/** @type {string} */ name) => connectors.find((c) => c.name === name)?.upstreamUrl;
  const upstreams = {
    // A group rule: everyone may only read the board; the IdP group `writers` may use every tool.
    kanban: { url: url('kanban'), title: 'Kanban board', token: 'KANBAN_TOKEN', tools: { readOnly: true }, toolsFor: { 'group:writers': {} } },
    notes: { url: url('notes'), title: 'Notes', userSupplied: true },
  };
  const aggregates = Object.fromEntries(connectors.filter((c) => c.upstreams).map((c) => [c.name, { title: c.title, upstreams: c.upstreams }]));
  return {
    UPSTREAMS: JSON.stringify(upstreams),
    AGGREGATES: JSON.stringify(aggregates),
    KANBAN_TOKEN: kanbanToken,
    TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    // The first demo user sees everyone's connections on /connections.
    ADMIN_EMAILS: DEMO_USERS[0]?.email ?? '',
  };
}

/** @param {string} name @param {number} port */
async function claimPort(name, port) {
  if (port === 0) return findFreePort();
  await assertPortFree(name, port);
  return port;
}

/** @param {number} port */
async function listenArgs(port) {
  // An explicit inspector port: two wranglers racing for the default 9229 can collide.
  return ['--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(await findFreePort()), '--show-interactive-dev-session=false'];
}

/** @param {string} dir @param {string} name @param {Record<string, string>} vars */
async function writeEnvFile(dir, name, vars) {
  const file = join(dir, name);
  for (const [key, value] of Object.entries(vars)) {
    if (/[\r\n']/.test(value)) throw new StackStartError(`${key} must be one line without single quotes`);
  }
  // Single quotes: dotenv takes the value literally (JSON in USER_TOKENS, `#` in a secret).
  const text = Object.entries(vars)
    .map(([key, value]) => `${key}='${value}'`)
    .join('\n');
  await writeFile(file, `${text}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}

/** @param {Response} response */
async function healthy(response) {
  if (response.status === 503) {
    const body = /** @type {{ problems?: string[] }} */ (await response.json().catch(() => ({})));
    throw new StackStartError(`the gateway reports a configuration problem with: ${(body.problems ?? []).join(', ')}`);
  }
  return response.status === 200;
}

/**
 * Polls `url` until `isReady` says yes, the part exits, or the time is up.
 * @param {Part} part
 * @param {import('./lib/wrangler.mjs').WranglerProcess} proc
 * @param {string} url
 * @param {(response: Response) => boolean | Promise<boolean>} isReady
 * @param {RequestInit} init
 * @param {StackOptions} options
 * @param {Record<Part, string[]>} tails
 */
async function waitFor(part, proc, url, isReady, init, options, tails) {
  let exited = false;
  proc.exited.then(() => (exited = true));
  const deadline = Date.now() + (options.readyTimeoutMs ?? READY_TIMEOUT_MS);
  while (Date.now() < deadline) {
    if (options.signal?.aborted) throw new StackStartError('start abandoned');
    if (exited) throw new StackStartError(`the ${part} stopped while starting`, tails[part]);
    try {
      const response = await fetch(url, { ...init, signal: AbortSignal.timeout(2_000) });
      if (await isReady(response)) return;
    } catch (error) {
      if (error instanceof StackStartError) throw new StackStartError(error.message, tails[part]);
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new StackStartError(`the ${part} was not ready within ${Math.round((options.readyTimeoutMs ?? READY_TIMEOUT_MS) / 1000)} s`, tails[part]);
}

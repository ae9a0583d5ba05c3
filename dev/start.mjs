// @ts-check
/**
 * `npm start`: runs the whole local system (stand-in Access, demo upstream, gateway) on loopback,
 * prints how to connect, and stops every process it started on Ctrl-C.
 *
 *   GATEWAY_PORT, ACCESS_PORT, UPSTREAM_PORT   or   --gateway-port, --access-port, --upstream-port
 */
import { relative } from 'node:path';
import { parseArgs } from 'node:util';

const [major] = process.versions.node.split('.').map(Number);
if ((major ?? 0) < 22) {
  console.error(`Node ${process.versions.node} is too old for wrangler: run \`npm start\`, which uses the project's Node 22.`);
  process.exit(1);
}

const { DEFAULT_PORTS, DEFAULT_STATE_DIR, DEMO_NOTES_TOKENS, DEMO_USERS, startStack, StackStartError } = await import('./stack.mjs');
const { PortBusyError } = await import('./lib/ports.mjs');

/** @typedef {import('./stack.mjs').Part} Part */

const PORTS = /** @type {const} */ ([
  { key: 'gateway', flag: 'gateway-port', env: 'GATEWAY_PORT', what: 'gateway' },
  { key: 'access', flag: 'access-port', env: 'ACCESS_PORT', what: 'sign-in provider' },
  { key: 'upstream', flag: 'upstream-port', env: 'UPSTREAM_PORT', what: 'demo upstream' },
]);

const { values: flags } = parseArgs({
  options: {
    'gateway-port': { type: 'string' },
    'access-port': { type: 'string' },
    'upstream-port': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (flags.help) {
  console.log(`npm start [-- --gateway-port N --access-port N --upstream-port N]

Runs on 127.0.0.1: a stand-in for Cloudflare Access, a demo MCP server that only accepts a PAT, and
the gateway in front of it. Ports also come from ${PORTS.map((p) => `${p.env} (default ${DEFAULT_PORTS[p.key]})`).join(', ')}.`);
  process.exit(0);
}

const ports = Object.fromEntries(PORTS.map((p) => [p.key, readPort(p)]));

let ready = false;
// The readiness probes' own request lines can arrive just after the guide: they are not news.
const PROBE_LINE = /\[wrangler:info\] (GET \/health 200|POST \/mcp 401)/;
let probesQuietUntil = 0;
/** @type {import('./stack.mjs').Stack | undefined} */
let stack;
/** @type {Promise<import('./stack.mjs').Stack> | undefined} */
let startup;
const starting = new AbortController();
/** @type {Promise<void> | undefined} */
let stopping;

/** Stops everything (including a start under way), then exits; runs once. */
function shutdown(/** @type {number} */ code, /** @type {string} */ why) {
  if (stopping) {
    if (why) console.error('Still stopping...');
    return stopping;
  }
  if (why) console.error(why);
  stopping = (async () => {
    // A start under way stops what it had started before it rejects.
    starting.abort();
    const running = stack ?? (await startup?.catch(() => undefined));
    await running?.stop();
    process.exit(code);
  })();
  return stopping;
}
for (const [signal, code] of /** @type {const} */ ([
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
])) {
  process.on(signal, () => void shutdown(code, '\nStopping...'));
}
process.on('uncaughtException', (error) => void shutdown(1, `unexpected error: ${error.stack ?? error}`));
// npm does not pass SIGTERM on to this script: when npm is killed alone, we are left orphaned
// (our parent changes) and would keep everything running with nobody to stop it.
const parent = process.ppid;
const watchParent = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(watchParent);
  void shutdown(1, 'npm stopped; stopping the local stack.');
}, 500).unref();

try {
  startup = startStack({
    signal: starting.signal,
    gatewayPort: ports.gateway,
    accessPort: ports.access,
    upstreamPort: ports.upstream,
    // Wrangler's start-up banners are noise next to the guide: show output once all is up.
    onLog: (part, line) => {
      if (!ready || !line.trim() || (Date.now() < probesQuietUntil && PROBE_LINE.test(line))) return;
      console.log(`[${part}] ${line}`);
    },
    // While starting, startStack itself reports a part that stops, with its last output.
    onUnexpectedExit: (part, detail) => {
      if (ready) void shutdown(1, `The ${part} stopped (${detail}); stopping the rest.`);
    },
  });
  stack = await startup;
} catch (error) {
  if (stopping) {
    // Interrupted while starting: shutdown() is already on it.
  } else if (error instanceof PortBusyError) {
    const port = PORTS.find((p) => p.what === error.part) ?? PORTS[0];
    console.error(
      `Port ${error.port} (for the ${error.part}) is already in use.\n` +
        `Stop whatever is using it, or choose another port: ${port.env}=${error.port + 10} npm start`,
    );
  } else if (error instanceof StackStartError) {
    console.error(`Could not start the local stack: ${error.message}`);
    if (error.logs.length > 0) console.error(`Its last output:\n  ${error.logs.join('\n  ')}`);
  } else {
    console.error(error);
  }
  await shutdown(1, '');
}

if (stack && !stopping) {
  printGuide(stack, process.uptime());
  ready = true;
  probesQuietUntil = Date.now() + 3_000;
}

/** @param {(typeof PORTS)[number]} p @returns {number} */
function readPort(p) {
  const raw = flags[p.flag] ?? process.env[p.env];
  if (raw === undefined || raw === '') return DEFAULT_PORTS[p.key];
  const port = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) {
    console.error(`${p.env} (or --${p.flag}) must be a port number from 1 to 65535, not "${raw}".`);
    process.exit(1);
  }
  return port;
}

/** @param {import('./stack.mjs').Stack} s @param {number} seconds */
function printGuide(s, seconds) {
  const mcp = s.urls.mcp;
  const notes = s.connectors.find((c) => c.name === 'notes');
  const work = s.connectors.find((c) => c.upstreams);
  const width = Math.max(...s.users.map((u) => u.email.length));
  const state = relative(process.cwd(), DEFAULT_STATE_DIR) || '.';
  console.log(`
mcp-oauth-gateway: local stack ready in ${seconds.toFixed(1)} s

  Gateway         ${s.urls.gateway}   (configuration check: ${s.urls.health})
  Sign-in         ${s.urls.access.issuer}
                  a stand-in for Cloudflare Access (OIDC discovery at …/.well-known/openid-configuration)
  Demo upstream   ${s.urls.upstreamMcp}   kanban MCP server; answers 401 without
                  Authorization: Bearer ${s.upstreamToken}   (demo token, sent by the gateway)
${
  notes
    ? `                  ${notes.upstreamUrl}   notes MCP server; takes each person's own token:
                  the gateway asks for it at sign-in. Demo tokens it accepts: ${DEMO_NOTES_TOKENS.join(', ')}
`
    : ''
}
Connector URLs:
${s.connectors.map((c) => `  ${c.title.padEnd(16)}  ${c.url}`).join('\n')}

Each is its own connector with its own sign-in; the examples below use the first.${
    work
      ? `
${work.title} is an aggregate: the tools of ${(work.upstreams ?? []).join(' and ')} behind one connector and one
sign-in, named ${(work.upstreams ?? []).map((u) => `${u}_…`).join(', ')} (e.g. kanban_list_boards, notes_add_note).`
      : ''
  }

  Claude Code     claude mcp add --transport http kanban-demo ${mcp}
  MCP Inspector   npx @modelcontextprotocol/inspector
                  then Transport Type "Streamable HTTP", URL ${mcp}, Connect
  mcp-remote      npx mcp-remote ${mcp}
  claude.ai       connectors call from Anthropic's cloud, so they need a public https URL, not localhost

Sign in with any email; the gateway lets in only some:
${s.users.map((u) => `  ${u.email.padEnd(width)}   ${u.allowed ? 'allowed' : 'not allowed (shows the refusal)'}`).join('\n')}

Your tokens and connected apps: ${s.urls.gateway}/connections (${DEMO_USERS[0]?.email} is an admin there).
Data lives in ${state} (delete it to start over). Ctrl-C stops everything.
`);
}

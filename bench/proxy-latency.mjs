// @ts-check
/**
 * The gateway's per-request cost, side by side with what it is compared to (issues #3, #10).
 *
 *   npm run bench                             (Node 22 from the `node` devDependency)
 *   BENCH_REQUESTS=5000 BENCH_LOAD_SECONDS=60 npm run bench
 *
 * Starts, all on loopback: the test upstream (test/fixtures/upstream-server.mjs), a stand-in
 * Cloudflare Access (OIDC: authorization, token, JWKS), and the Worker under `wrangler dev` in its
 * own process group, wrapped by bench/kv-counting-worker.js, which also serves the two Workers the
 * gateway is measured against: a bare pass-through that only swaps the credential header, and the
 * KV peer (bench/kv-peer-worker.js: one KV read, every header copied, forward). It signs in over
 * HTTP as an MCP client does, then, in one process:
 *
 * 1. latency, interleaved request by request: upstream direct, bare Worker, KV peer, gateway at
 *    `/mcp` (single upstream), gateway at `/<name>/mcp` (8 named upstreams, served on `localhost`
 *    by a second configuration), median and p99;
 * 2. where the time goes: each stage of the gateway run n times inside workerd (bench/stages.js),
 *    and KV operations per request, also for an upstream with people's own tokens;
 * 3. load: 50 concurrent sessions alternating `ping` and `tools/call`, bare Worker and gateway in
 *    alternating slices, requests per second and errors;
 * 4. first streamed event, bare Worker and gateway; then a 100 MiB SSE stream (bare, gateway POST
 *    answer, gateway GET stream) with workerd's memory before and at peak;
 * 5. bench/policy.mjs (policy on vs off), when present;
 * 6. bench/aggregate.mjs (issue #21): an aggregate's tools/list over five upstreams against the
 *    slowest alone, and its tools/call against the plain proxy's (its own wrangler dev, after the
 *    first has stopped). BENCH_AGGREGATE=0 skips it; BENCH_PARTS=aggregate runs only it.
 *
 * Prints one table, writes the figures to bench/results/<time>.json (git-ignored) and draws them
 * as docs/bench.svg. Only ratios within one run mean anything: the machine is shared.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startUpstream } from '../test/fixtures/upstream-server.mjs';
import { aggregateFigures, printAggregate } from './aggregate.mjs';
import { renderChart } from './chart.mjs';
import { ACCESS_CLIENT_ID, ACCESS_CLIENT_SECRET, fmt, inSession, rpcHeaders, signIn, startGateway, startStandInAccess, summary, timed } from './harness.mjs';
import { runLoad } from './load.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 1000);
const WARMUP = Math.min(200, Math.ceil(REQUESTS / 5));
const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 20);
const LOAD_SESSIONS = Number(process.env.BENCH_LOAD_SESSIONS ?? 50);
const STREAM_BYTES = Number(process.env.BENCH_STREAM_BYTES ?? 100 * 1024 * 1024);
const STREAM_ROUNDS = Number(process.env.BENCH_STREAM_ROUNDS ?? 3);
const FIRST_EVENT_ROUNDS = Number(process.env.BENCH_FIRST_EVENT_ROUNDS ?? 200);
const NAMED_UPSTREAMS = 8;
/** For a quick look while working: e.g. BENCH_PARTS=breakdown prints those figures only, and writes no chart. */
const ALL_PARTS = ['latency', 'breakdown', 'load', 'stream', 'policy'];
// Also `BENCH_PARTS=trail`: only the audit trail on against off, and its D1 statements per request;
// `BENCH_PARTS=latency`: only what the gateway adds over the bare Worker, with and without session and trail.
const PARTS = new Set((process.env.BENCH_PARTS ?? ALL_PARTS.join(',')).split(','));
/** The aggregate part: in a full run unless BENCH_AGGREGATE=0, in a partial one when BENCH_PARTS names it. */
const AGGREGATE = process.env.BENCH_AGGREGATE !== '0' && (process.env.BENCH_PARTS === undefined || PARTS.has('aggregate'));
const PAT = `pat_BENCH_${randomBytes(16).toString('hex')}`;
const EMAIL = 'bench@example.com';

if (Number(process.versions.node.split('.')[0]) < 22) {
  console.error(`Node ${process.versions.node}: run through npm (npm run bench) for the pinned Node 22.`);
  process.exit(1);
}

/** @type {Array<() => Promise<unknown>>} */
const cleanups = [];
const cleanup = async () => {
  for (const step of cleanups.reverse()) await step().catch(() => {});
  cleanups.length = 0;
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  await main();
} catch (error) {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
} finally {
  await cleanup();
}

async function main() {
  if (PARTS.size === 1 && AGGREGATE) {
    printAggregate(await aggregateFigures({ requests: REQUESTS, log }));
    return;
  }
  const upstream = await startUpstream();
  cleanups.push(() => upstream.close());
  const access = await startStandInAccess();
  cleanups.push(() => access.close());

  const work = await mkdtemp(join(tmpdir(), 'mcp-gw-bench-'));
  cleanups.push(() => rm(work, { recursive: true, force: true }));
  /** 8 named upstreams on the same test upstream; `own` takes people's own tokens (with a fallback). */
  const named = Object.fromEntries(
    Array.from({ length: NAMED_UPSTREAMS }, (_, i) => [
      i === NAMED_UPSTREAMS - 1 ? 'own' : `u${i}`,
      { url: `${upstream.origin}/`, token: 'BENCH_PAT', ...(i === NAMED_UPSTREAMS - 1 ? { userSupplied: true } : {}) },
    ]),
  );
  const gateway = await startGateway(
    work,
    {
      ACCESS_CLIENT_ID,
      ACCESS_CLIENT_SECRET,
      ACCESS_AUTHORIZATION_URL: `${access.base}/authorization`,
      ACCESS_TOKEN_URL: `${access.base}/token`,
      ACCESS_JWKS_URL: `${access.base}/jwks`,
      COOKIE_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
      TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
      // The upstream's root, so /mcp/json/mcp and /mcp/big/… reach its behaviours by path.
      UPSTREAM_URL: `${upstream.origin}/`,
      UPSTREAM_TOKEN: PAT,
      BENCH_PAT: PAT,
      BENCH_UPSTREAMS: JSON.stringify(named),
    },
    cleanups,
  );
  const origin = gateway.origin;
  // The second configuration answers on `localhost`: its own origin, resources and tokens.
  const severalOrigin = origin.replace('127.0.0.1', 'localhost');

  const token = await signIn(origin, '/mcp');
  const namedToken = await signIn(severalOrigin, '/u3/mcp');
  await expectOk(await fetch(`${severalOrigin}/__bench/vault`, { method: 'POST', body: JSON.stringify({ email: EMAIL, upstream: 'own', token: PAT }) }));
  const ownToken = await signIn(severalOrigin, '/own/mcp');
  // A second client whose log lines the bench worker drops: the gateway with printing off, to
  // show what printing one line costs under wrangler dev (its inspector forwards every line).
  const quietToken = await signIn(origin, '/mcp');
  await expectOk(await fetch(`${origin}/__bench/quiet-client`, { method: 'POST', body: signIn.lastClientId }));
  await expectOk(await fetch(`${origin}/__bench/peer-token`, { method: 'POST', body: token }));

  const ping = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
  // Each in a session, as a client's requests after initialize are: through the gateway the
  // session id is a handle it checks on the way in and makes on the way out (issue #16).
  const targets = {
    direct: await inSession({ url: `${upstream.origin}/json/mcp`, headers: rpcHeaders(PAT) }),
    bare: await inSession({ url: `${origin}/__bench/bare/json/mcp`, headers: rpcHeaders('bare-client-token') }),
    peer: await inSession({ url: `${origin}/__bench/peer/json/mcp`, headers: rpcHeaders(token) }),
    gateway: await inSession({ url: `${origin}/mcp/json/mcp`, headers: rpcHeaders(token) }),
    quiet: await inSession({ url: `${origin}/mcp/json/mcp`, headers: rpcHeaders(quietToken) }),
    // The audit trail off (no AUDIT_DB): `gateway` against it is what the trail adds (issue #20).
    trailOff: await inSession({ url: `${origin}/mcp/json/mcp`, headers: { ...rpcHeaders(token), 'X-Bench-Trail': 'off' } }),
    // The trail on, written to a D1 stand-in that only waits like a remote one: the Worker's own share.
    trailRemote: await inSession({ url: `${origin}/mcp/json/mcp`, headers: { ...rpcHeaders(token), 'X-Bench-Trail': 'remote' } }),
    named: await inSession({ url: `${severalOrigin}/u3/mcp/json/mcp`, headers: rpcHeaders(namedToken) }),
  };
  for (const [name, target] of Object.entries(targets)) {
    const check = await fetch(target.url, { method: 'POST', headers: target.headers, body: ping });
    const answer = await check.text();
    if (check.status !== 200 || !answer.includes('"result":{"ok":true}') || (name !== 'direct' && answer.includes(PAT))) {
      throw new Error(`${name} (${target.url}) does not reach the upstream (status ${check.status}): ${answer.slice(0, 200)}`);
    }
  }

  if (ALL_PARTS.some((part) => !PARTS.has(part))) {
    /** @type {Record<string, unknown>} */
    const partial = {};
    if (PARTS.has('trail')) {
      partial.trail = {
        ...(await trailInBlocks(targets.gateway, targets.trailOff, ping)),
        remoteLike: await trailInBlocks(targets.trailRemote, targets.trailOff, ping),
        d1: await d1PerRequest(origin, targets.gateway, ping),
      };
    }
    if (PARTS.has('latency')) {
      // What the gateway adds over the bare Worker, log not printed, taken apart in one run: with
      // and without a session (the handle's HMAC in and out) and with the trail on and off.
      const quietOff = { ...targets.quiet, headers: { ...targets.quiet.headers, 'X-Bench-Trail': 'off' } };
      const noSession = (/** @type {{ url: string, headers: Record<string, string> }} */ t) => {
        const { 'Mcp-Session-Id': _, ...headers } = t.headers;
        return { ...t, headers };
      };
      partial.latency = await pairedOverBare(
        { bare: targets.bare, quiet: targets.quiet, quietTrailOff: quietOff, bareNoSession: noSession(targets.bare), quietNoSession: noSession(quietOff) },
        ping,
      );
    }
    if (PARTS.has('breakdown')) {
      partial.stages = await stageBreakdown(origin, token);
      partial.kv = {
        gateway: await kvPerRequest(origin, targets.gateway, ping),
        own: await kvPerRequest(origin, { url: `${severalOrigin}/own/mcp/json/mcp`, headers: rpcHeaders(ownToken) }, ping),
      };
    }
    if (PARTS.has('load')) {
      partial.load = await runLoad({
        sessions: LOAD_SESSIONS,
        seconds: LOAD_SECONDS,
        paths: { bare: targets.bare, gateway: targets.gateway, quiet: targets.quiet },
      });
    }
    if (PARTS.has('stream')) {
      partial.firstEvent = await firstEventFigures(origin, token, quietToken);
      partial.stream = await streamFigures(upstream.origin, gateway, token);
    }
    await cleanup();
    if (AGGREGATE) partial.aggregate = await aggregateFigures({ requests: REQUESTS, log });
    console.log(JSON.stringify(partial, null, 2));
    return;
  }

  // 1. Latency, interleaved request by request so every path sees the same machine.
  // The trail off is measured apart, in blocks (trailInBlocks).
  const names = /** @type {Array<keyof typeof targets>} */ (Object.keys(targets).filter((name) => !name.startsWith('trail')));
  log(`latency: ${WARMUP} warm-up rounds, then ${REQUESTS} rounds of ${names.join(', ')}`);
  for (let i = 0; i < WARMUP; i++) for (const name of names) await timed(targets[name], ping);
  /** @type {Record<string, number[]>} */
  const ms = Object.fromEntries(names.map((name) => [name, []]));
  for (let i = 0; i < REQUESTS; i++) {
    // Rotate who goes first, so no path always follows the same one.
    for (let k = 0; k < names.length; k++) {
      const name = /** @type {keyof typeof targets} */ (names[(i + k) % names.length]);
      ms[name]?.push(await timed(targets[name], ping));
    }
  }
  const latency = Object.fromEntries(names.map((name) => [name, summary(ms[name] ?? [])]));
  const pairedVsBare = summary((ms.gateway ?? []).map((v, i) => v - (ms.bare?.[i] ?? 0)));

  // The trail on against off in blocks of one kind (see trailInBlocks), not in the rotation above.
  const trailBlocks = {
    ...(await trailInBlocks(targets.gateway, targets.trailOff, ping)),
    remoteLike: await trailInBlocks(targets.trailRemote, targets.trailOff, ping),
  };

  // 2. Where the time goes, and KV operations per request.
  log('breakdown: each stage n times inside workerd');
  const stages = await stageBreakdown(origin, token);
  const health = [];
  const refused = [];
  const unknownToken = { url: targets.gateway.url, headers: rpcHeaders('bench:unknownGrant0000:unknownsecret00000000000000000000') };
  for (let i = 0; i < Math.min(REQUESTS, 300); i++) {
    health.push(await timed({ url: `${origin}/health`, headers: {} }, undefined, 'GET'));
    refused.push(await timed(unknownToken, ping, 'POST', 401));
    await timed(targets.bare, ping);
  }
  const kv = {
    gateway: await kvPerRequest(origin, targets.gateway, ping),
    named: await kvPerRequest(origin, targets.named, ping),
    own: await kvPerRequest(origin, { url: `${severalOrigin}/own/mcp/json/mcp`, headers: rpcHeaders(ownToken) }, ping),
  };
  // While wrangler still runs: the results below are put together after it has stopped.
  const d1 = await d1PerRequest(origin, targets.gateway, ping);

  // 3. Load: 50 sessions alternating ping and tools/call, bare and gateway in alternating slices.
  log(`load: ${LOAD_SESSIONS} sessions, ${LOAD_SECONDS} s per path (bare, gateway, gateway not printing), in alternating slices`);
  const load = await runLoad({
    sessions: LOAD_SESSIONS,
    seconds: LOAD_SECONDS,
    paths: { bare: targets.bare, gateway: targets.gateway, quiet: targets.quiet },
  });

  // 4. Streaming: the first event, then a large stream with memory.
  log(`first event: ${FIRST_EVENT_ROUNDS} rounds; stream: ${STREAM_BYTES / 1024 / 1024} MiB x ${STREAM_ROUNDS}`);
  const firstEvent = await firstEventFigures(origin, token, quietToken);
  const stream = await streamFigures(upstream.origin, gateway, token);
  await cleanup();

  // 5. Tool policy on and off (in-process, after wrangler has stopped).
  const policy = existsSync(join(ROOT, 'bench/policy.mjs')) ? await runPolicyBench() : undefined;
  // 6. The aggregate, on its own wrangler dev.
  const aggregate = AGGREGATE ? await aggregateFigures({ requests: REQUESTS, log }) : undefined;

  const results = {
    when: new Date().toISOString(),
    node: process.version,
    requests: REQUESTS,
    latency,
    added: {
      overBare: { median: latency.gateway.median - latency.bare.median, p99: latency.gateway.p99 - latency.bare.p99 },
      overBarePaired: pairedVsBare,
      quietOverBare: { median: latency.quiet.median - latency.bare.median, p99: latency.quiet.p99 - latency.bare.p99 },
      printing: { median: latency.gateway.median - latency.quiet.median, p99: latency.gateway.p99 - latency.quiet.p99 },
      overDirect: { median: latency.gateway.median - latency.direct.median, p99: latency.gateway.p99 - latency.direct.p99 },
      namedOverSingle: { median: latency.named.median - latency.gateway.median, p99: latency.named.p99 - latency.gateway.p99 },
    },
    trailBlocks,
    d1,
    peerRatio: latency.gateway.median / latency.peer.median,
    wranglerRoundTrip: summary(health),
    unknownToken: summary(refused),
    stages,
    kv,
    load,
    firstEvent,
    stream,
    policy,
    aggregate,
  };
  const targetsMet = evaluate(results);
  printTable(results, targetsMet);

  const resultsDir = join(ROOT, 'bench/results');
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, `${results.when.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify({ ...results, targets: targetsMet }, null, 2)}\n`);
  await writeFile(join(resultsDir, 'latest.json'), `${JSON.stringify({ ...results, targets: targetsMet }, null, 2)}\n`);
  await writeFile(join(ROOT, 'docs/bench.svg'), renderChart({ ...results, targets: targetsMet }));
  console.log(`\nfigures: ${file}\nchart:   docs/bench.svg`);
}

/** @param {string} message */
function log(message) {
  console.log(`[bench] ${message}`);
}

/** @param {Response} response */
async function expectOk(response) {
  if (!response.ok) throw new Error(`${response.url} answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
}

/**
 * Per-op cost of each gateway stage inside workerd, in microseconds: the request that runs it n
 * times against the one that runs nothing, rounds interleaved, medians compared.
 * @param {string} origin @param {string} token
 */
async function stageBreakdown(origin, token) {
  const plan = {
    config: 2000,
    token: 50,
    'token-cached': 200,
    request: 500,
    body: 500,
    headers: 500,
    session: 500,
    log: 200,
    'log-build': 500,
    'log-print': 200,
    fetch: 20,
    forward: 20,
    bare: 20,
    'bare-log': 20,
    proxy: 20,
    'proxy-quiet': 20,
    resource: 20,
    gateway: 20,
  };
  const rounds = Number(process.env.BENCH_STAGE_ROUNDS ?? 30);
  /** @param {string} name @param {number} n */
  const once = async (name, n) => {
    const started = performance.now();
    const response = await fetch(`${origin}/__bench/stage?name=${name}&n=${n}`, { headers: { Authorization: `Bearer ${token}` } });
    const text = await response.text();
    if (response.status === 404) return undefined;
    if (!response.ok) throw new Error(`stage ${name}: ${response.status} ${text.slice(0, 200)}`);
    return performance.now() - started;
  };
  /** @type {Record<string, number | null>} */
  const perOpUs = {};
  const available = [];
  const only = process.env.BENCH_STAGES?.split(',');
  for (const name of Object.keys(plan)) {
    if (only && !only.includes(name)) continue;
    if ((await once(name, 1)) === undefined) perOpUs[name] = null;
    else available.push(name);
  }
  // Rounds over every stage, each paired with an empty request just before it, so a change in
  // the machine's load falls on all stages alike; the per-pair differences' median is kept.
  /** @type {Record<string, number[]>} */
  const added = Object.fromEntries(available.map((name) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const name of available) {
      const none = /** @type {number} */ (await once('none', 0));
      const some = /** @type {number} */ (await once(name, plan[/** @type {keyof typeof plan} */ (name)]));
      added[name]?.push(some - none);
    }
  }
  for (const name of available) perOpUs[name] = (summary(added[name] ?? []).median / plan[/** @type {keyof typeof plan} */ (name)]) * 1000;
  return perOpUs;
}

/** KV operations per request on one path, counted by the wrapper. @param {string} origin @param {{ url: string, headers: Record<string, string> }} target @param {string} body */
async function kvPerRequest(origin, target, body) {
  const n = 200;
  await timed(target, body);
  await fetch(`${origin}/__bench/kv?reset`);
  for (let i = 0; i < n; i++) await timed(target, body);
  /** @type {Record<string, number>} */
  const counts = await (await fetch(`${origin}/__bench/kv?reset`)).json();
  const reads = (counts.get ?? 0) + (counts.getWithMetadata ?? 0) + (counts.list ?? 0);
  const writes = (counts.put ?? 0) + (counts.delete ?? 0);
  return { requests: n, readsPerRequest: reads / n, writesPerRequest: writes / n, counts };
}

/**
 * The audit trail's D1 statements per request (the flush runs after the response, so a GET
 * /health after the last request lets its flush finish before the count is read).
 * @param {string} origin @param {{ url: string, headers: Record<string, string> }} target @param {string} body
 */
async function d1PerRequest(origin, target, body) {
  const n = 200;
  await timed(target, body);
  await fetch(`${origin}/health`);
  await fetch(`${origin}/__bench/d1?reset`);
  for (let i = 0; i < n; i++) await timed(target, body);
  await fetch(`${origin}/health`);
  /** @type {{ statements: number, batches: number }} */
  const counts = await (await fetch(`${origin}/__bench/d1?reset`)).json();
  // /health reads the schema version: one statement each, not the trail's.
  return { requests: n, statementsPerRequest: (counts.statements - 1) / n, batchesPerRequest: counts.batches / n, counts };
}

/**
 * Time to the first SSE event, bare Worker and gateway, interleaved: a POST answered with an
 * event stream, and the GET event stream (the path that checks for a legacy `endpoint` event).
 * The same through the client whose log lines are not printed, to show printing's share.
 * @param {string} origin @param {string} token @param {string} quietToken
 */
async function firstEventFigures(origin, token, quietToken) {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: {} } });
  /** The headers of a request in a session of `base` (its `/json/` path answers initialize). */
  const session = async (/** @type {string} */ base, /** @type {string} */ t) => (await inSession({ url: `${base}/json/mcp`, headers: rpcHeaders(t) })).headers;
  const sse = (/** @type {Record<string, string>} */ headers) => ({ ...headers, Accept: 'text/event-stream' });
  const bare = await session(`${origin}/__bench/bare`, 'bare-client-token');
  const gateway = await session(`${origin}/mcp`, token);
  const quiet = await session(`${origin}/mcp`, quietToken);
  const paths = {
    barePost: { url: `${origin}/__bench/bare/sse/mcp`, method: 'POST', headers: bare },
    gatewayPost: { url: `${origin}/mcp/sse/mcp`, method: 'POST', headers: gateway },
    bareGet: { url: `${origin}/__bench/bare/sse/mcp`, method: 'GET', headers: sse(bare) },
    gatewayGet: { url: `${origin}/mcp/sse/mcp`, method: 'GET', headers: sse(gateway) },
    quietPost: { url: `${origin}/mcp/sse/mcp`, method: 'POST', headers: quiet },
    quietGet: { url: `${origin}/mcp/sse/mcp`, method: 'GET', headers: sse(quiet) },
  };
  const first = async (/** @type {{ url: string, method: string, headers: Record<string, string> }} */ path) => {
    const started = performance.now();
    const response = await fetch(path.url, { method: path.method, headers: path.headers, body: path.method === 'POST' ? body : undefined });
    if (response.status !== 200 || !response.body) throw new Error(`${path.method} ${path.url} answered ${response.status}`);
    const reader = response.body.getReader();
    const { value } = await reader.read();
    const ms = performance.now() - started;
    if (!value || !new TextDecoder().decode(value).includes('data:')) throw new Error(`${path.url}: no event first`);
    await reader.cancel();
    return ms;
  };
  /** @type {Record<string, number[]>} */
  const ms = Object.fromEntries(Object.keys(paths).map((name) => [name, []]));
  for (let i = 0; i < Math.ceil(FIRST_EVENT_ROUNDS / 5); i++) for (const path of Object.values(paths)) await first(path);
  for (let i = 0; i < FIRST_EVENT_ROUNDS; i++) {
    for (const [name, path] of Object.entries(paths)) ms[name]?.push(await first(path));
  }
  return Object.fromEntries(Object.entries(ms).map(([name, values]) => [name, summary(values)]));
}

/** bench/policy.mjs in a child process; its table, verbatim. */
async function runPolicyBench() {
  log('policy: bench/policy.mjs');
  const child = spawn(process.execPath, [join(ROOT, 'bench/policy.mjs')], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_REQUESTS: process.env.BENCH_POLICY_REQUESTS ?? '300' },
  });
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  return { exitCode: code, table: out.trimEnd() };
}

/**
 * Each target of issue #10: its figure and whether it is met, and the same with the gateway's
 * log line not printed (the "quiet" client), which tells wrangler dev's printing cost apart.
 * @param {any} r
 */
function evaluate(r) {
  const firstEvent = (/** @type {string} */ who) =>
    Math.max(r.firstEvent[`${who}Post`].median - r.firstEvent.barePost.median, r.firstEvent[`${who}Get`].median - r.firstEvent.bareGet.median);
  const quiet = r.latency.quiet;
  const quietFirst = firstEvent('quiet');
  const errors = r.load.gateway.errors + r.load.bare.errors;
  return [
    {
      target: 'median added over the bare Worker <= 1 ms',
      value: `${r.added.overBare.median.toFixed(2)} ms`,
      met: r.added.overBare.median <= 1,
      notPrinting: `${r.added.quietOverBare.median.toFixed(2)} ms`,
      metNotPrinting: r.added.quietOverBare.median <= 1,
    },
    {
      target: 'p99 added over the bare Worker <= 2 ms',
      value: `${r.added.overBare.p99.toFixed(2)} ms`,
      met: r.added.overBare.p99 <= 2,
      notPrinting: `${r.added.quietOverBare.p99.toFixed(2)} ms`,
      metNotPrinting: r.added.quietOverBare.p99 <= 2,
    },
    {
      target: 'median faster than the KV peer',
      value: `${r.latency.gateway.median.toFixed(2)} vs ${r.latency.peer.median.toFixed(2)} ms`,
      met: r.peerRatio < 1,
      notPrinting: `${quiet.median.toFixed(2)} ms`,
      metNotPrinting: quiet.median < r.latency.peer.median,
    },
    {
      target: 'load: >= 0.95 x bare throughput, 0 errors',
      value: `x${r.load.ratio.toFixed(2)}, ${errors} errors`,
      met: r.load.ratio >= 0.95 && errors === 0,
      notPrinting: `x${r.load.ratios.quiet.toFixed(2)}, ${r.load.quiet.errors} errors`,
      metNotPrinting: r.load.ratios.quiet >= 0.95 && r.load.quiet.errors === 0,
    },
    {
      target: 'KV reads per request, seen token, warm isolate: 0',
      value: r.kv.gateway.readsPerRequest.toFixed(3),
      met: r.kv.gateway.readsPerRequest < 0.01,
      notPrinting: r.kv.gateway.readsPerRequest.toFixed(3),
      metNotPrinting: r.kv.gateway.readsPerRequest < 0.01,
    },
    {
      target: 'first SSE event within 1 ms of the bare Worker',
      value: `+${firstEvent('gateway').toFixed(2)} ms`,
      met: firstEvent('gateway') <= 1,
      notPrinting: `+${quietFirst.toFixed(2)} ms`,
      metNotPrinting: quietFirst <= 1,
    },
  ];
}

/** @param {any} r @param {Array<{ target: string, value: string, met: boolean, notPrinting: string, metNotPrinting: boolean }>} targets */
function printTable(r, targets) {
  const row = (/** @type {string} */ label, /** @type {{ median: number, p99: number }} */ s) =>
    console.log(`  ${label.padEnd(52)}${fmt(s.median)} ${fmt(s.p99)}`);
  console.log('');
  console.log(`ping, ${REQUESTS} interleaved rounds (ms)                           median     p99`);
  row('upstream direct', r.latency.direct);
  row('bare pass-through Worker (swaps the header)', r.latency.bare);
  row('KV peer (one KV read, copy headers, forward)', r.latency.peer);
  row('gateway /mcp (one upstream)', r.latency.gateway);
  row(`gateway /u3/mcp (${NAMED_UPSTREAMS} named upstreams)`, r.latency.named);
  row('gateway /mcp, its log line not printed (bench only)', r.latency.quiet);
  row('added over the bare Worker (difference of figures)', r.added.overBare);
  row('added over the bare Worker (per round)', r.added.overBarePaired);
  row('added over the bare Worker, log line not printed', r.added.quietOverBare);
  row('printing the log line (gateway - not printed)', r.added.printing);
  row(`${NAMED_UPSTREAMS} named upstreams over one (difference)`, r.added.namedOverSingle);
  row('gateway /mcp, audit trail on, in blocks', r.trailBlocks.on);
  row('gateway /mcp, audit trail off (no AUDIT_DB), in blocks', r.trailBlocks.off);
  row('audit trail on - off (blocks of one kind)', r.trailBlocks.added);
  row('audit trail on - off, D1 waiting like a remote one', r.trailBlocks.remoteLike.added);
  row('wrangler dev round trip (GET /health)', r.wranglerRoundTrip);
  row('unknown token (KV miss, 401)', r.unknownToken);
  console.log(`  gateway / KV peer (median): x${r.peerRatio.toFixed(2)}`);
  console.log(`  audit trail D1 statements per request: ${r.d1.statementsPerRequest.toFixed(3)} (batches ${r.d1.batchesPerRequest.toFixed(3)})`);
  console.log('');
  console.log('stage, run n times inside workerd (µs per op)');
  for (const [name, us] of Object.entries(r.stages)) console.log(`  ${name.padEnd(52)}${us === null ? '     n/a' : us.toFixed(1).padStart(8)}`);
  console.log('');
  console.log('KV operations per request (reads, writes)');
  for (const [name, k] of Object.entries(r.kv))
    console.log(`  ${name.padEnd(52)}${k.readsPerRequest.toFixed(3).padStart(8)} ${k.writesPerRequest.toFixed(3).padStart(8)}`);
  console.log('');
  console.log(`load: ${r.load.sessions} sessions, ${r.load.seconds} s per path             req/s   errors   median    p99 (ms)`);
  for (const name of ['bare', 'gateway', 'quiet']) {
    const l = r.load[name];
    if (!l) continue;
    console.log(`  ${name.padEnd(52)}${l.rps.toFixed(0).padStart(6)} ${String(l.errors).padStart(8)} ${fmt(l.latency.median)} ${fmt(l.latency.p99)}`);
  }
  console.log(`  gateway / bare throughput: x${r.load.ratio.toFixed(3)}; log line not printed: x${(r.load.ratios?.quiet ?? Number.NaN).toFixed(3)}`);
  console.log('');
  console.log('first SSE event (ms)                                          median     p99');
  for (const [name, s] of Object.entries(r.firstEvent)) row(name, /** @type {any} */ (s));
  console.log('');
  console.log(`SSE stream of ${STREAM_BYTES / 1024 / 1024} MiB, median of ${STREAM_ROUNDS} rounds   MiB/s   RSS before -> peak (MiB)`);
  console.log(`  upstream direct (no Worker)                  ${r.stream.directMiBps.toFixed(0).padStart(5)}`);
  for (const path of r.stream.paths) {
    console.log(
      `  ${path.name.padEnd(44)} ${path.MiBps.toFixed(0).padStart(5)}   ${path.beforeMiB.toFixed(0)} -> ${path.peakMiB.toFixed(0)} (+${path.growthMiB.toFixed(1)})`,
    );
  }
  console.log(`  (workerd RSS ${r.stream.idleMiB.toFixed(0)} MiB idle, before the first stream)`);
  if (r.policy) {
    console.log('');
    console.log('tool policy (bench/policy.mjs)');
    console.log(r.policy.table);
  }
  if (r.aggregate) printAggregate(r.aggregate);
  console.log('');
  console.log(`targets (issue #10)${' '.repeat(45)}as shipped${' '.repeat(17)}log line not printed (bench only)`);
  const mark = (/** @type {boolean} */ met) => (met ? 'met    ' : 'NOT MET');
  for (const t of targets) console.log(`  ${t.target.padEnd(52)} ${mark(t.met)} ${t.value.padEnd(18)} ${mark(t.metNotPrinting)} ${t.notPrinting}`);
  console.log('(wrangler dev runs workerd locally; production adds the network between Cloudflare and the upstream, not this overhead.)');
}

/**
 * The audit trail on against off, in alternating blocks of one kind. Not interleaved request by
 * request: the trail's write runs after each response, so under wrangler dev (a local SQLite on
 * this machine's cores) it lands on whichever request comes next; in a rotation that is another
 * path's. In a block every request follows one of its own kind, so "on" carries its own writes,
 * as a client's next request would. The first request of each block is not counted.
 * @param {{ url: string, headers: Record<string, string> }} on
 * @param {{ url: string, headers: Record<string, string> }} off
 * @param {string} body
 */
async function trailInBlocks(on, off, body) {
  const BLOCK = 20;
  /** @type {{ on: number[], off: number[] }} */
  const ms = { on: [], off: [] };
  for (let i = 0; i < WARMUP; i++) {
    await timed(on, body);
    await timed(off, body);
  }
  for (let block = 0; block < Math.ceil((2 * REQUESTS) / BLOCK); block++) {
    const kind = block % 2 === 0 ? 'on' : 'off';
    for (let i = 0; i < BLOCK; i++) {
      const taken = await timed(kind === 'on' ? on : off, body);
      if (i > 0) ms[kind].push(taken);
    }
  }
  const [onFigures, offFigures] = [summary(ms.on), summary(ms.off)];
  return { on: onFigures, off: offFigures, added: { median: onFigures.median - offFigures.median, p99: onFigures.p99 - offFigures.p99 } };
}

/**
 * Each target's median and p99, and its paired difference from `bare` (or `bareNoSession` for
 * names ending NoSession), interleaved request by request with the order rotated.
 * @param {Record<string, { url: string, headers: Record<string, string> }>} targets
 * @param {string} body
 */
async function pairedOverBare(targets, body) {
  const names = Object.keys(targets);
  for (let i = 0; i < WARMUP; i++) for (const name of names) await timed(/** @type {*} */ (targets[name]), body);
  /** @type {Record<string, number[]>} */
  const ms = Object.fromEntries(names.map((name) => [name, []]));
  for (let i = 0; i < REQUESTS; i++) {
    for (let k = 0; k < names.length; k++) {
      const name = /** @type {string} */ (names[(i + k) % names.length]);
      ms[name]?.push(await timed(/** @type {*} */ (targets[name]), body));
    }
  }
  /** @type {Record<string, unknown>} */
  const out = {};
  for (const name of names) {
    const base = name.endsWith('NoSession') ? ms.bareNoSession : ms.bare;
    const own = ms[name] ?? [];
    out[name] = { ...summary(own), overBare: name.startsWith('bare') ? undefined : summary(own.map((v, i) => v - (base?.[i] ?? 0))) };
  }
  return out;
}

/**
 * Streaming throughput side by side, in rounds so the three Worker paths see the same machine
 * load: a bare pass-through Worker (bench/kv-counting-worker.js, the floor), a POST answer through
 * the gateway (passed on untouched), and the session's GET event stream through the gateway (the
 * path that watches for legacy `endpoint` events, issue #12). For each, the median MiB/s and the
 * highest resident-memory peak of workerd over its resident memory just before that run.
 */
async function streamFigures(/** @type {string} */ upstreamOrigin, /** @type {{ origin: string, pgid: number }} */ gateway, /** @type {string} */ token) {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call' });
  const { headers: session } = await inSession({ url: `${gateway.origin}/mcp/json/mcp`, headers: rpcHeaders(token) });
  const sse = { ...session, Accept: 'text/event-stream' };
  const paths = [
    { name: 'bare pass-through Worker (POST)', url: `${gateway.origin}/__bench/bare/big/mcp?bytes=${STREAM_BYTES}`, method: 'POST', headers: rpcHeaders() },
    { name: 'gateway POST answer', url: `${gateway.origin}/mcp/big/mcp?bytes=${STREAM_BYTES}`, method: 'POST', headers: rpcHeaders(token) },
    { name: 'gateway GET event stream', url: `${gateway.origin}/mcp/big/mcp?bytes=${STREAM_BYTES}`, method: 'GET', headers: sse },
  ];
  const drain = async (/** @type {string} */ url, /** @type {string} */ method, /** @type {Record<string, string>} */ headers) => {
    const started = performance.now();
    const response = await fetch(url, { method, headers, body: method === 'POST' ? body : undefined });
    if (response.status !== 200) throw new Error(`${method} ${url} answered ${response.status}`);
    let bytes = 0;
    for await (const chunk of /** @type {AsyncIterable<Uint8Array>} */ (response.body)) bytes += chunk.byteLength;
    if (bytes !== STREAM_BYTES) throw new Error(`${method} ${url}: got ${bytes} of ${STREAM_BYTES} bytes`);
    return STREAM_BYTES / 1024 / 1024 / ((performance.now() - started) / 1000);
  };

  const directMiBps = await drain(`${upstreamOrigin}/big/mcp?bytes=${STREAM_BYTES}`, 'POST', rpcHeaders());
  const idleMiB = await workerdRssMiB(gateway.pgid);
  const figures = paths.map((path) => ({ ...path, rates: /** @type {number[]} */ ([]), growthMiB: 0, beforeMiB: 0, peakMiB: 0 }));
  for (let round = 0; round < STREAM_ROUNDS; round++) {
    for (const path of figures) {
      const pids = await workerdPids(gateway.pgid);
      const before = await workerdRssMiB(gateway.pgid, pids);
      let peak = before;
      const sampler = setInterval(() => void workerdRssMiB(gateway.pgid, pids).then((mib) => (peak = Math.max(peak, mib))), 20);
      path.rates.push(await drain(path.url, path.method, path.headers).finally(() => clearInterval(sampler)));
      peak = Math.max(peak, await workerdRssMiB(gateway.pgid, pids));
      if (peak - before >= path.growthMiB) Object.assign(path, { growthMiB: peak - before, beforeMiB: before, peakMiB: peak });
    }
  }
  return {
    directMiBps,
    bytes: STREAM_BYTES,
    idleMiB,
    paths: figures.map(({ name, rates, growthMiB, beforeMiB, peakMiB }) => ({ name, MiBps: summary(rates).median, growthMiB, beforeMiB, peakMiB })),
  };
}

/** The workerd processes in the gateway's process group (Linux /proc). */
async function workerdPids(/** @type {number} */ pgid) {
  /** @type {string[]} */
  const pids = [];
  for (const pid of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // Fields after the parenthesised command: state ppid pgrp ...
    const match = /^\d+ \((.*)\) \S+ \d+ (\d+)/.exec(stat);
    if (match && Number(match[2]) === pgid && match[1]?.startsWith('workerd')) pids.push(pid);
  }
  return pids;
}

/** Resident memory of the workerd processes in the gateway's process group, in MiB. */
async function workerdRssMiB(/** @type {number} */ pgid, /** @type {string[] | Promise<string[]>} */ pids = workerdPids(pgid)) {
  let kib = 0;
  for (const pid of await pids) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    kib += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }
  return kib / 1024;
}

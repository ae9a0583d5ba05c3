// @ts-check
/**
 * Aggregate bench (issue #21): what one connector over five upstreams costs.
 *
 *   npx node bench/aggregate.mjs               (alone; Node 22 from the `node` devDependency)
 *   npm run bench                              (also runs it; BENCH_AGGREGATE=0 skips it,
 *                                               BENCH_PARTS=aggregate runs only it)
 *   BENCH_AGGREGATE_ROUNDS=200 BENCH_REQUESTS=2000 npx node bench/aggregate.mjs
 *
 * Five upstreams (bench/delayed-upstream.mjs) answer `tools/list` after 10, 20, 30, 40 and 50 ms,
 * and everything else at once. The gateway (wrangler dev, its own) serves each at `/w<ms>/mcp`
 * (the plain proxy) and all five as the aggregate `/five/mcp`; the same five again, answering
 * with `ttlMs: 0`, as `/fresh/mcp`, where the gateway keeps no list, so every list is a first
 * list (a cold cache). Measured, interleaved request by request:
 *
 * 1. `tools/list`: each upstream directly, the slowest through the plain proxy, the aggregate's
 *    first list, its cached list. Asked in parallel, the first list should take about as long as
 *    the slowest upstream, not the sum of all five (printed for reference).
 * 2. `tools/call` of one tool: directly, through the plain proxy, through the aggregate; the
 *    aggregate's median and p99 added over the plain proxy.
 *
 * Clients speak 2025-11-25 in a session (the aggregate keeps its own, like the latency bench's
 * gateway), and 2026-07-28 without one. Only differences within one run mean anything: the
 * machine is shared.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startDelayedUpstream, TOOLS } from './delayed-upstream.mjs';
import { ACCESS_CLIENT_ID, ACCESS_CLIENT_SECRET, fmt, rpcHeaders, signIn, startGateway, startStandInAccess, summary, timed } from './harness.mjs';

const DELAYS = [10, 20, 30, 40, 50];
const SLOWEST = Math.max(...DELAYS);

/**
 * @param {{ requests?: number, rounds?: number, log?: (message: string) => void }} [options]
 *   requests: tools/call rounds (BENCH_REQUESTS, 1000); rounds: tools/list rounds (BENCH_AGGREGATE_ROUNDS, 100)
 */
export async function aggregateFigures(options = {}) {
  const requests = options.requests ?? Number(process.env.BENCH_REQUESTS ?? 1000);
  const rounds = options.rounds ?? Number(process.env.BENCH_AGGREGATE_ROUNDS ?? 100);
  const log = options.log ?? ((/** @type {string} */ message) => console.log(`[bench] ${message}`));
  /** @type {Array<() => Promise<unknown>>} */
  const cleanups = [];
  try {
    const pat = `pat_BENCH_${randomBytes(16).toString('hex')}`;
    const upstream = await startDelayedUpstream(pat);
    cleanups.push(() => upstream.close());
    const access = await startStandInAccess();
    cleanups.push(() => access.close());
    const work = await mkdtemp(join(tmpdir(), 'mcp-gw-bench-aggregate-'));
    cleanups.push(() => rm(work, { recursive: true, force: true }));

    const upstreams = Object.fromEntries(
      DELAYS.flatMap((ms) => [
        [`w${ms}`, { url: `${upstream.origin}/${ms}/mcp`, token: 'BENCH_PAT' }],
        [`c${ms}`, { url: `${upstream.origin}/${ms}/fresh/mcp`, token: 'BENCH_PAT' }],
      ]),
    );
    const aggregates = {
      five: { title: 'Five upstreams', upstreams: DELAYS.map((ms) => `w${ms}`) },
      fresh: { title: 'Five upstreams, no list kept', upstreams: DELAYS.map((ms) => `c${ms}`) },
    };
    log('aggregate: starting its gateway');
    const gateway = await startGateway(
      work,
      {
        ACCESS_CLIENT_ID,
        ACCESS_CLIENT_SECRET,
        ACCESS_AUTHORIZATION_URL: `${access.base}/authorization`,
        ACCESS_TOKEN_URL: `${access.base}/token`,
        ACCESS_JWKS_URL: `${access.base}/jwks`,
        COOKIE_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
        UPSTREAM_URL: `${upstream.origin}/${SLOWEST}/mcp`,
        UPSTREAM_TOKEN: pat,
        BENCH_PAT: pat,
        UPSTREAMS: JSON.stringify(upstreams),
        AGGREGATES: JSON.stringify(aggregates),
      },
      cleanups,
    );
    const { origin } = gateway;
    const tokens = {
      plain: await signIn(origin, `/w${SLOWEST}/mcp`),
      first: await signIn(origin, '/fresh/mcp'),
      cached: await signIn(origin, '/five/mcp'),
    };
    /** 2025-11-25 in the session `initialize` gave (the aggregate's own; the plain proxy passes the upstream's: none here). */
    const legacy = async (/** @type {string} */ path, /** @type {string} */ token) => maybeSession({ url: `${origin}${path}`, headers: rpcHeaders(token) });
    const session = {
      plain: await legacy(`/w${SLOWEST}/mcp`, tokens.plain),
      first: await legacy('/fresh/mcp', tokens.first),
      cached: await legacy('/five/mcp', tokens.cached),
    };
    const list = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const call = (/** @type {string} */ tool) =>
      JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: tool, arguments: { text: 'hi' } } });
    const direct = (/** @type {number} */ ms) => ({ url: `${upstream.origin}/${ms}/mcp`, headers: rpcHeaders(pat) });

    /** @type {Record<string, Probe>} */
    const listProbes = {
      ...Object.fromEntries(DELAYS.map((ms) => [`direct${ms}`, { ...direct(ms), body: list }])),
      plain: { ...session.plain, body: list },
      first: { ...session.first, body: list },
      cached: { ...session.cached, body: list },
      firstModern: modern(`${origin}/fresh/mcp`, tokens.first, 'tools/list'),
      cachedModern: modern(`${origin}/five/mcp`, tokens.cached, 'tools/list'),
    };
    // Each aggregate list must hold every upstream's tools: one left out would make it look fast.
    for (const name of ['first', 'cached', 'firstModern', 'cachedModern']) {
      const tools = await listedTools(need(listProbes[name]));
      if (tools.length !== TOOLS * DELAYS.length)
        throw new Error(`the aggregate ${name} list has ${tools.length} tools, not ${TOOLS * DELAYS.length}: ${tools.slice(0, 5)}`);
    }
    log(`aggregate: tools/list, ${rounds} interleaved rounds`);
    const lists = await interleaved(listProbes, rounds, Math.ceil(rounds / 10));
    const sumOfDirect = DELAYS.reduce((sum, ms) => sum + (lists.figures[`direct${ms}`]?.median ?? Number.NaN), 0);

    const tool = `w${SLOWEST}_tool_1`;
    /** @type {Record<string, Probe>} */
    const callProbes = {
      direct: { ...direct(SLOWEST), body: call('tool_1') },
      plain: { ...session.plain, body: call('tool_1') },
      aggregate: { ...session.cached, body: call(tool) },
      plainModern: modern(`${origin}/w${SLOWEST}/mcp`, tokens.plain, 'tools/call', 'tool_1'),
      aggregateModern: modern(`${origin}/five/mcp`, tokens.cached, 'tools/call', tool),
    };
    for (const [name, probe] of Object.entries(callProbes)) {
      const answer = await (await fetch(probe.url, { method: 'POST', headers: probe.headers, body: probe.body })).text();
      if (!answer.includes('"text":"ok"')) throw new Error(`tools/call through ${name} was not answered: ${answer.slice(0, 200)}`);
    }
    log(`aggregate: tools/call, ${requests} interleaved rounds`);
    const calls = await interleaved(callProbes, requests, Math.min(200, Math.ceil(requests / 5)));
    const f = (/** @type {string} */ name) => need(calls.figures[name]);
    const added = (/** @type {string} */ a, /** @type {string} */ b) => ({
      difference: { median: f(a).median - f(b).median, p99: f(a).p99 - f(b).p99 },
      perRound: summary((calls.ms[a] ?? []).map((v, i) => v - (calls.ms[b]?.[i] ?? 0))),
    });
    return {
      delaysMs: DELAYS,
      rounds,
      requests,
      list: {
        direct: Object.fromEntries(DELAYS.map((ms) => [ms, lists.figures[`direct${ms}`]])),
        slowestThroughGateway: lists.figures.plain,
        first: lists.figures.first,
        cached: lists.figures.cached,
        firstModern: lists.figures.firstModern,
        cachedModern: lists.figures.cachedModern,
        sumOfDirectMedians: sumOfDirect,
        firstOverSlowest: {
          median: need(lists.figures.first).median - need(lists.figures.plain).median,
          p99: need(lists.figures.first).p99 - need(lists.figures.plain).p99,
        },
      },
      call: /** @type {Record<string, { median: number, p99: number }>} */ ({
        ...calls.figures,
        addedOverPlain: added('aggregate', 'plain').difference,
        addedOverPlainPaired: added('aggregate', 'plain').perRound,
        modernAddedOverPlain: added('aggregateModern', 'plainModern').difference,
        modernAddedOverPlainPaired: added('aggregateModern', 'plainModern').perRound,
      }),
    };
  } finally {
    for (const step of cleanups.reverse()) await step().catch(() => {});
  }
}

/** The aggregate bench's table. @param {Awaited<ReturnType<typeof aggregateFigures>>} a */
export function printAggregate(a) {
  const row = (/** @type {string} */ label, /** @type {{ median: number, p99: number } | undefined} */ s) =>
    console.log(`  ${label.padEnd(58)}${fmt(s?.median ?? Number.NaN)} ${fmt(s?.p99 ?? Number.NaN)}`);
  const slowest = Math.max(...a.delaysMs);
  console.log('');
  console.log(`aggregate tools/list, five upstreams (${a.delaysMs.join(', ')} ms), ${a.rounds} rounds (ms)     median     p99`);
  for (const ms of a.delaysMs) row(`upstream answering after ${ms} ms, direct`, a.list.direct[ms]);
  row(`slowest (${slowest} ms) through the gateway's plain proxy`, a.list.slowestThroughGateway);
  console.log(`  ${'sum of the five direct medians (if asked one by one)'.padEnd(58)}${fmt(a.list.sumOfDirectMedians)}`);
  row('aggregate, first list (none kept), 2025 session', a.list.first);
  row('aggregate, cached list, 2025 session', a.list.cached);
  row('aggregate, first list, 2026-07-28', a.list.firstModern);
  row('aggregate, cached list, 2026-07-28', a.list.cachedModern);
  row('aggregate first list - slowest through the gateway', a.list.firstOverSlowest);
  console.log('');
  console.log(`aggregate tools/call, ${a.requests} interleaved rounds (ms)                      median     p99`);
  row('upstream direct', a.call.direct);
  row(`plain proxy (/w${slowest}/mcp, tool_1), 2025`, a.call.plain);
  row(`aggregate (/five/mcp, w${slowest}_tool_1), 2025 session`, a.call.aggregate);
  row('aggregate - plain, 2025 (difference of figures)', a.call.addedOverPlain);
  row('aggregate - plain, 2025 (per round)', a.call.addedOverPlainPaired);
  row('plain proxy, 2026-07-28', a.call.plainModern);
  row('aggregate, 2026-07-28', a.call.aggregateModern);
  row('aggregate - plain, 2026-07-28 (difference of figures)', a.call.modernAddedOverPlain);
  row('aggregate - plain, 2026-07-28 (per round)', a.call.modernAddedOverPlainPaired);
}

/** @typedef {{ url: string, headers: Record<string, string>, body: string }} Probe */

/**
 * Each probe's median and p99 (and its times, for per-round differences), interleaved request by
 * request with the order rotated, after `warmup` rounds.
 * @param {Record<string, Probe>} probes @param {number} rounds @param {number} warmup
 */
async function interleaved(probes, rounds, warmup) {
  const names = Object.keys(probes);
  for (let i = 0; i < warmup; i++) for (const name of names) await timed(need(probes[name]), need(probes[name]).body);
  /** @type {Record<string, number[]>} */
  const ms = Object.fromEntries(names.map((name) => [name, []]));
  for (let i = 0; i < rounds; i++) {
    for (let k = 0; k < names.length; k++) {
      const name = /** @type {string} */ (names[(i + k) % names.length]);
      ms[name]?.push(await timed(need(probes[name]), need(probes[name]).body));
    }
  }
  return { ms, figures: Object.fromEntries(names.map((name) => [name, summary(ms[name] ?? [])])) };
}

/**
 * A 2026-07-28 request (stateless: no session), with the headers and `_meta` the revision asks
 * for (`Mcp-Method`, and `Mcp-Name` for a call).
 * @param {string} url @param {string} token @param {'tools/list' | 'tools/call'} method @param {string} [tool]
 * @returns {Probe}
 */
function modern(url, token, method, tool) {
  const _meta = {
    'io.modelcontextprotocol/protocolVersion': '2026-07-28',
    'io.modelcontextprotocol/clientCapabilities': {},
    'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1' },
  };
  const params = tool ? { name: tool, arguments: { text: 'hi' }, _meta } : { _meta };
  return {
    url,
    headers: {
      ...rpcHeaders(token),
      'MCP-Protocol-Version': '2026-07-28',
      'Mcp-Method': method,
      ...(tool ? { 'Mcp-Name': tool } : {}),
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 3, method, params }),
  };
}

/**
 * The target with the session `initialize` gave, if any: the aggregate gives 2025 clients its
 * own; the plain proxy passes the upstream's, and these upstreams are stateless.
 * @param {{ url: string, headers: Record<string, string> }} target
 */
async function maybeSession(target) {
  const initialize = {
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
  };
  const response = await fetch(target.url, { method: 'POST', headers: target.headers, body: JSON.stringify(initialize) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${target.url}: initialize answered ${response.status}: ${text.slice(0, 200)}`);
  const session = response.headers.get('Mcp-Session-Id');
  const headers = { ...target.headers, ...(session ? { 'Mcp-Session-Id': session } : {}) };
  await fetch(target.url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) }).then((r) =>
    r.arrayBuffer(),
  );
  return { ...target, headers };
}

/** The tool names a list answer holds (JSON or one SSE event). @param {Probe} probe */
async function listedTools(probe) {
  const text = await (await fetch(probe.url, { method: 'POST', headers: probe.headers, body: probe.body })).text();
  const json = text.trimStart().startsWith('{') ? text : (/^data: (.*)$/m.exec(text)?.[1] ?? '{}');
  const tools = /** @type {{ result?: { tools?: Array<{ name: string }> } }} */ (JSON.parse(json)).result?.tools ?? [];
  return tools.map((t) => t.name);
}

/** @template T @param {T | undefined} value @returns {T} */
function need(value) {
  if (value === undefined) throw new Error('missing figure');
  return value;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (Number(process.versions.node.split('.')[0]) < 22) {
    console.error(`Node ${process.versions.node}: run through npm (npx node bench/aggregate.mjs) for the pinned Node 22.`);
    process.exit(1);
  }
  try {
    printAggregate(await aggregateFigures());
  } catch (error) {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exitCode = 1;
  }
}

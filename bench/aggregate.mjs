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
 * Clients speak 2025-11-25 in a session, like the latency bench's. Only differences within one
 * run mean anything: the machine is shared.
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
    const through = async (/** @type {string} */ path) => maybeSession({ url: `${origin}${path}`, headers: rpcHeaders(await signIn(origin, path)) });
    const targets = {
      ...Object.fromEntries(DELAYS.map((ms) => [`direct${ms}`, { url: `${upstream.origin}/${ms}/mcp`, headers: rpcHeaders(pat) }])),
      plain: await through(`/w${SLOWEST}/mcp`),
      first: await through('/fresh/mcp'),
      cached: await through('/five/mcp'),
    };

    const list = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    // Each aggregate list must hold every upstream's tools: one left out would make it look fast.
    for (const name of ['first', 'cached']) {
      const tools = await listedTools(targets[name], list);
      if (tools.length !== TOOLS * DELAYS.length)
        throw new Error(`the aggregate ${name} list has ${tools.length} tools, not ${TOOLS * DELAYS.length}: ${tools.slice(0, 5)}`);
    }
    log(`aggregate: tools/list, ${rounds} interleaved rounds`);
    const names = Object.keys(targets);
    /** @type {Record<string, number[]>} */
    const listMs = Object.fromEntries(names.map((name) => [name, []]));
    for (let i = 0; i < Math.ceil(rounds / 10); i++) for (const name of names) await timed(need(targets[name]), list);
    for (let i = 0; i < rounds; i++) {
      for (let k = 0; k < names.length; k++) {
        const name = /** @type {string} */ (names[(i + k) % names.length]);
        listMs[name]?.push(await timed(need(targets[name]), list));
      }
    }
    const lists = Object.fromEntries(names.map((name) => [name, summary(listMs[name] ?? [])]));
    const sumOfDirect = DELAYS.reduce((sum, ms) => sum + (lists[`direct${ms}`]?.median ?? Number.NaN), 0);

    log(`aggregate: tools/call, ${requests} interleaved rounds`);
    const call = (/** @type {string} */ tool) =>
      JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: tool, arguments: { text: 'hi' } } });
    const calls = {
      direct: { target: need(targets[`direct${SLOWEST}`]), body: call('tool_1') },
      plain: { target: targets.plain, body: call('tool_1') },
      aggregate: { target: targets.cached, body: call(`w${SLOWEST}_tool_1`) },
    };
    for (const [name, { target, body }] of Object.entries(calls)) {
      const answer = await (await fetch(target.url, { method: 'POST', headers: target.headers, body })).text();
      if (!answer.includes('"text":"ok"')) throw new Error(`tools/call through ${name} was not answered: ${answer.slice(0, 200)}`);
    }
    const callNames = /** @type {Array<keyof typeof calls>} */ (Object.keys(calls));
    /** @type {Record<string, number[]>} */
    const callMs = Object.fromEntries(callNames.map((name) => [name, []]));
    for (let i = 0; i < Math.min(200, Math.ceil(requests / 5)); i++) for (const name of callNames) await timed(calls[name].target, calls[name].body);
    for (let i = 0; i < requests; i++) {
      for (let k = 0; k < callNames.length; k++) {
        const name = /** @type {keyof typeof calls} */ (callNames[(i + k) % callNames.length]);
        callMs[name]?.push(await timed(calls[name].target, calls[name].body));
      }
    }
    const callFigures = Object.fromEntries(callNames.map((name) => [name, summary(callMs[name] ?? [])]));
    const plainCall = need(callFigures.plain);
    const aggregateCall = need(callFigures.aggregate);
    return {
      delaysMs: DELAYS,
      rounds,
      requests,
      list: {
        direct: Object.fromEntries(DELAYS.map((ms) => [ms, lists[`direct${ms}`]])),
        slowestThroughGateway: lists.plain,
        first: lists.first,
        cached: lists.cached,
        sumOfDirectMedians: sumOfDirect,
        firstOverSlowest: { median: need(lists.first).median - need(lists.plain).median, p99: need(lists.first).p99 - need(lists.plain).p99 },
      },
      call: {
        ...callFigures,
        addedOverPlain: { median: aggregateCall.median - plainCall.median, p99: aggregateCall.p99 - plainCall.p99 },
        addedOverPlainPaired: summary((callMs.aggregate ?? []).map((v, i) => v - (callMs.plain?.[i] ?? 0))),
      },
    };
  } finally {
    for (const step of cleanups.reverse()) await step().catch(() => {});
  }
}

/** The aggregate bench's table. @param {Awaited<ReturnType<typeof aggregateFigures>>} a */
export function printAggregate(a) {
  const row = (/** @type {string} */ label, /** @type {{ median: number, p99: number } | undefined} */ s) =>
    console.log(`  ${label.padEnd(58)}${fmt(s?.median ?? Number.NaN)} ${fmt(s?.p99 ?? Number.NaN)}`);
  console.log('');
  console.log(`aggregate tools/list, five upstreams (${a.delaysMs.join(', ')} ms), ${a.rounds} rounds (ms)     median     p99`);
  for (const ms of a.delaysMs) row(`upstream answering after ${ms} ms, direct`, a.list.direct[ms]);
  row(`slowest (${Math.max(...a.delaysMs)} ms) through the gateway's plain proxy`, a.list.slowestThroughGateway);
  console.log(`  ${'sum of the five direct medians (if asked one by one)'.padEnd(58)}${fmt(a.list.sumOfDirectMedians)}`);
  row('aggregate, first list (nothing kept: ttlMs 0)', a.list.first);
  row('aggregate, cached list', a.list.cached);
  row('aggregate first list - slowest through the gateway', a.list.firstOverSlowest);
  console.log('');
  console.log(`aggregate tools/call, ${a.requests} interleaved rounds (ms)                      median     p99`);
  row('upstream direct', a.call.direct);
  row('gateway plain proxy (/w50/mcp, tool_1)', a.call.plain);
  row('gateway aggregate (/five/mcp, w50_tool_1)', a.call.aggregate);
  row('aggregate - plain proxy (difference of figures)', a.call.addedOverPlain);
  row('aggregate - plain proxy (per round)', a.call.addedOverPlainPaired);
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

/** The tool names a list answer holds (JSON or one SSE event). @param {{ url: string, headers: Record<string, string> }} target @param {string} body */
async function listedTools(target, body) {
  const text = await (await fetch(target.url, { method: 'POST', headers: target.headers, body })).text();
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

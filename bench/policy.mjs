// @ts-check
/**
 * Tool policy bench (issue #9): what a tool policy adds to `tools/call` and `tools/list`, policy
 * on against policy off, in the same run.
 *
 *   npx node bench/policy.mjs                 (Node 22 from the `node` devDependency)
 *   BENCH_REQUESTS=5000 npx node bench/policy.mjs
 *
 * The gateway's proxy (src/proxy/handler.ts, which calls the policy) is bundled with esbuild and
 * called in this process (V8, the engine workerd runs), in front of the real test upstream
 * (test/fixtures/upstream-server.mjs, `/tools/json/` and `/tools/sse/`) over loopback. The OAuth
 * leg and wrangler dev's own round trip are the same with and without a policy (bench/
 * proxy-latency.mjs measures them), so leaving them out makes the policy's share visible instead
 * of hiding it in their noise. Requests alternate between the configurations; "added" is the
 * median of the per-pair differences.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { startUpstream } from '../test/fixtures/upstream-server.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 1000);
const WARMUP = Math.min(200, Math.ceil(REQUESTS / 5));
const PAT = 'pat_BENCH_policy';

if (Number(process.versions.node.split('.')[0]) < 22) {
  console.error(`Node ${process.versions.node}: run through npm (npx node bench/policy.mjs) for the pinned Node 22.`);
  process.exit(1);
}

const work = await mkdtemp(join(tmpdir(), 'mcp-gw-bench-policy-'));
const upstream = await startUpstream();
try {
  await main();
} catch (error) {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exitCode = 1;
} finally {
  await upstream.close();
  await rm(work, { recursive: true, force: true });
}

async function main() {
  const { loadConfig, proxyMcpRequest } = await bundleGateway();
  const configFor = (/** @type {string} */ format, /** @type {object | undefined} */ tools) =>
    loadConfig({
      ACCESS_CLIENT_ID: 'bench',
      ACCESS_CLIENT_SECRET: 'bench',
      ACCESS_AUTHORIZATION_URL: 'https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/bench/authorization',
      ACCESS_TOKEN_URL: 'https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/bench/token',
      ACCESS_JWKS_URL: 'https://team.cloudflareaccess.com/cdn-cgi/access/sso/oidc/bench/jwks',
      COOKIE_ENCRYPTION_KEY: 'bench-cookie-secret-0123456789abcdef0123',
      UPSTREAM_URL: `${upstream.origin}/tools/${format}/mcp?pace=0`,
      UPSTREAM_TOKEN: PAT,
      ...(tools ? { UPSTREAM_TOOLS: JSON.stringify(tools) } : {}),
    });
  const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} };
  // The proxy's one log line per request would drown the table.
  const print = console.log.bind(console);
  console.log = () => {};

  /** One request through the proxy, its whole answer read; milliseconds. */
  const timed = async (/** @type {any} */ config, /** @type {unknown} */ message) => {
    const body = JSON.stringify(message);
    const request = new Request('https://gw.example/mcp', {
      method: 'POST',
      body,
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        'Content-Length': String(Buffer.byteLength(body)),
      },
    });
    const started = performance.now();
    const response = await proxyMcpRequest(
      request,
      { config, upstream: config.upstreams[0], identity: { email: 'alice@example.com', sub: 'bench' }, clientId: 'bench' },
      ctx,
    );
    const text = await response.text();
    const ms = performance.now() - started;
    if (response.status !== 200 || text.includes('"error"')) throw new Error(`unexpected answer ${response.status}: ${text.slice(0, 200)}`);
    return ms;
  };

  const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_issue', arguments: {} } };
  const list = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} };
  const deny = { deny: ['delete_*', 'create_*'] };
  const readOnly = { readOnly: true };
  const rows = [
    ['tools/call, JSON answer', 'json', call, deny, 'deny'],
    ['tools/call, JSON answer', 'json', call, readOnly, 'readOnly (cached annotations)'],
    ['tools/call, SSE answer', 'sse', call, readOnly, 'readOnly (cached annotations)'],
    ['tools/list, JSON answer', 'json', list, deny, 'deny'],
    ['tools/list, JSON answer', 'json', list, readOnly, 'readOnly'],
    ['tools/list, SSE answer', 'sse', list, readOnly, 'readOnly'],
  ];

  print(`${REQUESTS} requests per configuration after ${WARMUP} of warm-up, alternating policy off and on (ms)`);
  print('');
  print('request                   policy                             off median   on median   added median   added p99');
  for (const [label, format, message, tools, policy] of rows) {
    const off = configFor(String(format), undefined);
    const on = configFor(String(format), tools);
    for (let i = 0; i < WARMUP; i++) {
      await timed(off, message);
      await timed(on, message);
    }
    const offMs = [];
    const onMs = [];
    for (let i = 0; i < REQUESTS; i++) {
      offMs.push(await timed(off, message));
      onMs.push(await timed(on, message));
    }
    const added = onMs.map((ms, i) => ms - (offMs[i] ?? 0));
    print(
      `${String(label).padEnd(26)}${String(policy).padEnd(35)}${fmt(median(offMs))}  ${fmt(median(onMs))}     ${fmt(median(added))}     ${fmt(quantile(added, 0.99))}`,
    );
  }
  print('');
  print('(In-process proxy in front of a loopback upstream: the OAuth leg and wrangler dev add the same with and without a policy.');
  print(' The SSE answers arrive as events split in three writes each, so every event crosses a chunk boundary.)');
}

/**
 * src/proxy/handler.ts and src/config as one ES module Node can import. `cloudflare:workers` is
 * the runtime's; the rate limiter's base class is stubbed, as no `rateLimit` is configured here.
 */
async function bundleGateway() {
  const entry = join(work, 'entry.ts');
  await writeFile(
    entry,
    `export { loadConfig } from ${JSON.stringify(join(ROOT, 'src/config/index.ts'))};\n` +
      `export { proxyMcpRequest } from ${JSON.stringify(join(ROOT, 'src/proxy/handler.ts'))};\n`,
  );
  const outfile = join(work, 'gateway.mjs');
  await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    outfile,
    logLevel: 'error',
    plugins: [
      {
        name: 'cloudflare-workers-stub',
        setup(b) {
          b.onResolve({ filter: /^cloudflare:workers$/ }, () => ({ path: 'cloudflare:workers', namespace: 'stub' }));
          b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
            contents: 'export class DurableObject { constructor(ctx, env) { this.ctx = ctx; this.env = env; } }',
          }));
        },
      },
    ],
  });
  return import(pathToFileURL(outfile).href);
}

/** @param {number[]} values */
function median(values) {
  return quantile(values, 0.5);
}

/** @param {number[]} values @param {number} q */
function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

/** @param {number} ms */
function fmt(ms) {
  return ms.toFixed(3).padStart(9);
}

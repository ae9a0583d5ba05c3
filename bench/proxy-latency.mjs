// @ts-check
/**
 * Proxy latency bench (issue #3): what the gateway adds to an MCP request, measured end to end.
 *
 *   npx node bench/proxy-latency.mjs          (Node 22 from the `node` devDependency)
 *   BENCH_REQUESTS=5000 npx node bench/proxy-latency.mjs
 *
 * Starts, all on loopback: the test upstream (test/fixtures/upstream-server.mjs), a stand-in
 * Cloudflare Access (OIDC: authorization, token, JWKS), and the Worker under `wrangler dev` in its
 * own process group, with KV operations counted by bench/kv-counting-worker.js. It then signs in
 * over HTTP as an MCP client does (register, authorize, consent, Access, callback, token), and
 * times the same JSON-RPC POST sent to the upstream directly and through the gateway, alternately.
 * Reports median and p99 of both and what the gateway adds, KV operations per authenticated
 * request, and the throughput of a large SSE stream (bare Worker, POST answer, GET event stream)
 * with the growth of workerd's resident memory while it streams.
 *
 *   BENCH_STREAM_BYTES=104857600 BENCH_STREAM_ROUNDS=5 npx node bench/proxy-latency.mjs
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import * as jose from 'jose';
import * as oauth from 'oauth4webapi';
import { startUpstream } from '../test/fixtures/upstream-server.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 1000);
const WARMUP = Math.min(200, Math.ceil(REQUESTS / 5));
const STREAM_BYTES = Number(process.env.BENCH_STREAM_BYTES ?? 400 * 1024 * 1024);
const STREAM_ROUNDS = Number(process.env.BENCH_STREAM_ROUNDS ?? 3);
const PAT = `pat_BENCH_${randomBytes(16).toString('hex')}`;
const ACCESS_CLIENT_ID = 'bench-access-client';
const ACCESS_CLIENT_SECRET = randomBytes(16).toString('hex');
const CLIENT_REDIRECT = 'http://localhost:33418/callback';

if (Number(process.versions.node.split('.')[0]) < 22) {
  console.error(`Node ${process.versions.node}: run through npm (npx node bench/proxy-latency.mjs) for the pinned Node 22.`);
  process.exit(1);
}

/** @type {Array<() => Promise<unknown>>} */
const cleanups = [];
const cleanup = async () => {
  for (const step of cleanups.reverse()) await step().catch(() => {});
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  await main();
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
} finally {
  await cleanup();
}

async function main() {
  const upstream = await startUpstream();
  cleanups.push(() => upstream.close());
  const access = await startStandInAccess();
  cleanups.push(() => access.close());

  const work = await mkdtemp(join(tmpdir(), 'mcp-gw-bench-'));
  cleanups.push(() => rm(work, { recursive: true, force: true }));
  const gateway = await startGateway(work, {
    ACCESS_CLIENT_ID,
    ACCESS_CLIENT_SECRET,
    ACCESS_AUTHORIZATION_URL: `${access.base}/authorization`,
    ACCESS_TOKEN_URL: `${access.base}/token`,
    ACCESS_JWKS_URL: `${access.base}/jwks`,
    COOKIE_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    // The upstream's root, so /mcp/json/mcp and /mcp/big/… reach its behaviours by path.
    UPSTREAM_URL: `${upstream.origin}/`,
    UPSTREAM_TOKEN: PAT,
  });

  const token = await signIn(gateway.origin);
  const rpc = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
  const direct = { url: `${upstream.origin}/json/mcp`, headers: rpcHeaders() };
  const proxied = { url: `${gateway.origin}/mcp/json/mcp`, headers: rpcHeaders(token) };

  const check = await fetch(proxied.url, { method: 'POST', headers: proxied.headers, body: rpc });
  const answer = await check.text();
  if (check.status !== 200 || !answer.includes('"result":{"ok":true}') || answer.includes(PAT)) {
    throw new Error(
      `/mcp does not proxy to the upstream yet (status ${check.status}): ${answer.slice(0, 200)}\n` +
        'TODO(#3): wire proxyMcpRequest (src/proxy/handler.ts) into the OAuth provider\'s apiHandler, then run this again.',
    );
  }

  console.log(`warm-up: ${WARMUP} requests each`);
  for (let i = 0; i < WARMUP; i++) {
    await timed(direct, rpc);
    await timed(proxied, rpc);
  }
  await fetch(`${gateway.origin}/__bench/kv?reset`);
  console.log(`measuring: ${REQUESTS} requests each, alternating direct and through the gateway`);
  const directMs = [];
  const proxiedMs = [];
  for (let i = 0; i < REQUESTS; i++) {
    directMs.push(await timed(direct, rpc));
    proxiedMs.push(await timed(proxied, rpc));
  }
  /** @type {Record<string, number>} */
  const kv = await (await fetch(`${gateway.origin}/__bench/kv`)).json();

  // Where the added time goes: wrangler dev's own round trip (/health touches neither KV nor the
  // upstream), and the token lookup alone (a well-formed unknown token: one KV read, then 401).
  const healthMs = [];
  const refusedMs = [];
  const unknownToken = { url: proxied.url, headers: rpcHeaders('bench:unknown:token') };
  for (let i = 0; i < Math.min(REQUESTS, 500); i++) {
    healthMs.push(await timed({ url: `${gateway.origin}/health`, headers: {} }, undefined, 'GET'));
    refusedMs.push(await timed(unknownToken, rpc, 'POST', 401));
  }

  const stream = await streamFigures(upstream.origin, gateway, token);

  const d = summary(directMs);
  const p = summary(proxiedMs);
  const paired = summary(proxiedMs.map((ms, i) => ms - (directMs[i] ?? 0)));
  const kvTotal = Object.values(kv).reduce((a, b) => a + b, 0);
  console.log('');
  console.log(`JSON-RPC POST, ${REQUESTS} requests each (ms)      median     p99`);
  console.log(`  upstream direct                          ${fmt(d.median)}  ${fmt(d.p99)}`);
  console.log(`  through the gateway                      ${fmt(p.median)}  ${fmt(p.p99)}`);
  console.log(`  added (difference of the figures)        ${fmt(p.median - d.median)}  ${fmt(p.p99 - d.p99)}`);
  console.log(`  added (per request pair)                 ${fmt(paired.median)}  ${fmt(paired.p99)}`);
  console.log(`  wrangler dev round trip (GET /health)    ${fmt(summary(healthMs).median)}  ${fmt(summary(healthMs).p99)}`);
  console.log(`  token lookup only (unknown token, 401)   ${fmt(summary(refusedMs).median)}  ${fmt(summary(refusedMs).p99)}`);
  console.log(`KV operations per authenticated request: ${(kvTotal / REQUESTS).toFixed(2)} (${JSON.stringify(kv)} over ${REQUESTS})`);
  console.log('');
  console.log(`SSE stream of ${STREAM_BYTES / 1024 / 1024} MiB, median of ${STREAM_ROUNDS} rounds   MiB/s   RSS peak over the run's start (MiB)`);
  console.log(`  upstream direct (no Worker)                  ${stream.directMiBps.toFixed(0).padStart(5)}`);
  for (const path of stream.paths) console.log(`  ${path.name.padEnd(44)} ${path.MiBps.toFixed(0).padStart(5)}   +${path.growthMiB.toFixed(1)}`);
  const [, post, get] = stream.paths;
  if (post && get) console.log(`  GET stream / POST answer throughput: ${((get.MiBps / post.MiBps) * 100).toFixed(0)}%`);
  console.log(`  (workerd RSS ${stream.idleMiB.toFixed(0)} MiB idle, before the first stream)`);
  console.log('(wrangler dev runs workerd locally; production adds the network between Cloudflare and the upstream, not this overhead.)');
}

/** @param {string} [token] */
function rpcHeaders(token) {
  return {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'MCP-Protocol-Version': '2025-11-25',
    ...(token ? { Authorization: `Bearer ${token}` } : {}),
  };
}

/**
 * @param {{ url: string, headers: Record<string, string> }} target
 * @param {string | undefined} body
 */
async function timed(target, body, method = 'POST', status = 200) {
  const started = performance.now();
  const response = await fetch(target.url, { method, headers: target.headers, body });
  await response.arrayBuffer();
  if (response.status !== status) throw new Error(`${target.url} answered ${response.status}`);
  return performance.now() - started;
}

/** @param {number[]} values */
function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (/** @type {number} */ q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
  return { median: at(0.5), p99: at(0.99) };
}

/** @param {number} ms */
function fmt(ms) {
  return ms.toFixed(2).padStart(7);
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
  const sse = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream', 'MCP-Protocol-Version': '2025-11-25', 'Mcp-Session-Id': 'bench-session' };
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
  const figures = paths.map((path) => ({ ...path, rates: /** @type {number[]} */ ([]), growthMiB: 0 }));
  for (let round = 0; round < STREAM_ROUNDS; round++) {
    for (const path of figures) {
      const pids = await workerdPids(gateway.pgid);
      const before = await workerdRssMiB(gateway.pgid, pids);
      let peak = before;
      const sampler = setInterval(() => void workerdRssMiB(gateway.pgid, pids).then((mib) => (peak = Math.max(peak, mib))), 20);
      path.rates.push(await drain(path.url, path.method, path.headers).finally(() => clearInterval(sampler)));
      peak = Math.max(peak, await workerdRssMiB(gateway.pgid, pids));
      path.growthMiB = Math.max(path.growthMiB, peak - before);
    }
  }
  return {
    directMiBps,
    idleMiB,
    paths: figures.map(({ name, rates, growthMiB }) => ({ name, MiBps: summary(rates).median, growthMiB })),
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

async function freePort() {
  const server = createNetServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = server.address();
  await new Promise((resolve) => server.close(() => resolve(undefined)));
  if (!address || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

/**
 * `wrangler dev` in its own process group (stopping only its PID can leave workerd running), with
 * the configuration in an env file and KV state in a throwaway directory.
 */
async function startGateway(/** @type {string} */ work, /** @type {Record<string, string>} */ vars) {
  const port = await freePort();
  const envFile = join(work, 'bench.env');
  await writeFile(envFile, Object.entries(vars).map(([name, value]) => `${name}=${value}\n`).join(''), { mode: 0o600 });
  const logPath = join(work, 'wrangler.log');
  const log = createWriteStream(logPath);
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'node_modules/wrangler/bin/wrangler.js'),
      'dev',
      'bench/kv-counting-worker.js',
      '--ip', '127.0.0.1',
      '--port', String(port),
      '--inspector-port', String(await freePort()),
      '--persist-to', join(work, 'state'),
      '--env-file', envFile,
      '--show-interactive-dev-session=false',
      '--log-level', 'warn',
    ],
    {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
    },
  );
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const pgid = /** @type {number} */ (child.pid);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  cleanups.push(async () => {
    try {
      process.kill(-pgid, 'SIGTERM');
    } catch {}
    const timeout = new Promise((resolve) => setTimeout(resolve, 5000, 'timeout'));
    if ((await Promise.race([exited, timeout])) === 'timeout') {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {}
    }
  });

  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    const health = await fetch(`${origin}/health`).catch(() => undefined);
    if (health?.ok) break;
    if (health && health.status !== 200) throw new Error(`gateway misconfigured: ${await health.text()}`);
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`wrangler dev did not start; its log:\n${(await readFile(logPath, 'utf8').catch(() => '')).slice(-3000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { origin, pgid };
}

/** The MCP client's side of the login, over HTTP, with a cookie jar for the browser legs. */
async function signIn(/** @type {string} */ origin) {
  /** @type {Map<string, string>} */
  const jar = new Map();
  const browser = async (/** @type {string} */ url, /** @type {RequestInit} */ init = {}) => {
    const headers = new Headers(init.headers);
    if (jar.size > 0) headers.set('Cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    return response;
  };
  const expectStatus = async (/** @type {Response} */ response, /** @type {number} */ status, /** @type {string} */ step) => {
    if (response.status !== status) throw new Error(`${step}: expected ${status}, got ${response.status}: ${(await response.text()).slice(0, 300)}`);
    return response;
  };

  const registration = await expectStatus(
    await fetch(`${origin}/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        client_name: 'Latency bench',
        redirect_uris: [CLIENT_REDIRECT],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      }),
    }),
    201,
    'register',
  );
  const { client_id: clientId } = /** @type {{ client_id: string }} */ (await registration.json());

  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const authorize = new URL('/authorize', origin);
  for (const [name, value] of Object.entries({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: CLIENT_REDIRECT,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    scope: 'mcp',
    resource: `${origin}/mcp`,
  })) {
    authorize.searchParams.set(name, value);
  }
  const consent = await expectStatus(await browser(authorize.href), 200, 'authorize');
  const handle = /name="handle" value="([^"]+)"/.exec(await consent.text())?.[1];
  if (!handle) throw new Error('authorize: no consent form');
  const toAccess = await expectStatus(
    await browser(`${origin}/authorize`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: origin },
      body: new URLSearchParams({ handle, decision: 'approve' }),
    }),
    302,
    'consent',
  );
  const fromAccess = await expectStatus(await browser(toAccess.headers.get('Location') ?? ''), 302, 'access login');
  const back = await expectStatus(await browser(fromAccess.headers.get('Location') ?? ''), 302, 'callback');
  const code = new URL(back.headers.get('Location') ?? '', origin).searchParams.get('code') ?? '';
  const tokens = await expectStatus(
    await fetch(`${origin}/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        code_verifier: verifier,
        client_id: clientId,
        redirect_uri: CLIENT_REDIRECT,
        resource: `${origin}/mcp`,
      }),
    }),
    200,
    'token',
  );
  return /** @type {{ access_token: string }} */ (await tokens.json()).access_token;
}

/**
 * A stand-in Cloudflare Access for SaaS app: the person "signs in" the moment the authorization
 * endpoint is visited; the token endpoint checks the client secret, redirect URI and PKCE, and
 * returns an RS256 ID token with the nonce; the JWKS endpoint publishes the key.
 */
async function startStandInAccess() {
  const { privateKey, publicKey } = await jose.generateKeyPair('RS256');
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'bench-key', alg: 'RS256', use: 'sig' };
  /** @type {Map<string, { redirectUri: string, challenge: string, nonce: string }>} */
  const codes = new Map();
  const path = `/cdn-cgi/access/sso/oidc/${ACCESS_CLIENT_ID}`;
  let base = '';

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', base);
    const send = (/** @type {number} */ status, /** @type {unknown} */ body) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && url.pathname === `${path}/authorization`) {
      const code = randomBytes(16).toString('hex');
      const param = (/** @type {string} */ name) => url.searchParams.get(name) ?? '';
      codes.set(code, { redirectUri: param('redirect_uri'), challenge: param('code_challenge'), nonce: param('nonce') });
      const back = new URL(param('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', param('state'));
      res.writeHead(302, { Location: back.href });
      return res.end();
    }
    if (req.method === 'GET' && url.pathname === `${path}/jwks`) return send(200, { keys: [jwk] });
    if (req.method === 'POST' && url.pathname === `${path}/token`) {
      let raw = '';
      for await (const chunk of req) raw += chunk;
      const form = new URLSearchParams(raw);
      if (form.get('client_id') !== ACCESS_CLIENT_ID || form.get('client_secret') !== ACCESS_CLIENT_SECRET) return send(401, { error: 'invalid_client' });
      const pending = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      if (!pending || pending.redirectUri !== form.get('redirect_uri')) return send(400, { error: 'invalid_grant' });
      if ((await oauth.calculatePKCECodeChallenge(form.get('code_verifier') ?? '')) !== pending.challenge) return send(400, { error: 'invalid_grant' });
      const idToken = await new jose.SignJWT({ email: 'bench@example.com', nonce: pending.nonce })
        .setProtectedHeader({ alg: 'RS256', kid: jwk.kid })
        .setIssuer(base + path)
        .setAudience(ACCESS_CLIENT_ID)
        .setSubject('bench-user')
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(privateKey);
      return send(200, { access_token: randomBytes(16).toString('hex'), token_type: 'Bearer', expires_in: 600, id_token: idToken });
    }
    send(404, { error: 'not_found' });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('access stand-in did not bind');
  base = `http://127.0.0.1:${address.port}`;
  return {
    base: `${base}${path}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve(undefined));
    }),
  };
}

// @ts-check
/**
 * Bench-only entry: the real Worker (src/index.ts) with its OAUTH_KV binding wrapped to count
 * operations, and `/__bench/kv` to read (and `?reset`) the counts. Used by proxy-latency.mjs via
 * `wrangler dev bench/kv-counting-worker.js`; never deployed.
 *
 * `/__bench/bare/<path>` is the floor: the least a Worker can do, a fetch of `<path>` under
 * UPSTREAM_URL with every header copied and only `Authorization` swapped for UPSTREAM_TOKEN, whose
 * answer is returned untouched (no token check, no log). `/__bench/peer/<path>` is the KV peer
 * (kv-peer-worker.js), `/__bench/stage` runs one gateway stage n times (stages.js), and
 * `/__bench/vault` stores a person's own token, as the login's token page would.
 *
 * `X-Bench-Trail: off` gets the configuration without AUDIT_DB (the audit trail off), `remote`
 * one whose AUDIT_DB only waits as a remote database would (remoteLikeD1), and
 * `/__bench/d1` counts the trail's D1 statements.
 *
 * Requests to `localhost` (rather than 127.0.0.1) get a second configuration, BENCH_UPSTREAMS as
 * `UPSTREAMS` (several named upstreams), so one workerd serves both sides of that comparison.
 */
import worker from '../src/index';

// Every Durable Object class the Worker exports (RateLimiter, an aggregate's sessions), so the
// bench's wrangler dev binds the same ones as wrangler.jsonc.
export * from '../src/index';

import { configFor } from '../src/config';
import { TokenVault } from '../src/vault';
import { peerForward, registerPeerToken } from './kv-peer-worker.js';
import { runStage } from './stages.js';

/**
 * OAuth clients whose proxy log lines are dropped (`/__bench/quiet-client`): the bench's "not
 * printed" row, to tell printing's cost under wrangler dev from the Worker's own work.
 */
const quietClients = new Set();
const print = console.log;
console.log = (/** @type {unknown[]} */ ...args) => {
  const [line] = args;
  if (quietClients.size > 0 && typeof line === 'string' && line.startsWith('{"event":"mcp_proxy"')) {
    for (const client of quietClients) if (line.includes(`"clientId":"${client}"`)) return;
  }
  print(...args);
};

const counts = { get: 0, getWithMetadata: 0, put: 0, delete: 0, list: 0 };
/** D1 statements the audit trail ran (`/__bench/d1`): each is one round trip to the database. */
const d1 = { statements: 0, batches: 0 };

/** AUDIT_DB with every statement's run counted. @param {D1Database} db */
function countingD1(db) {
  const statement = (/** @type {D1PreparedStatement} */ s) =>
    new Proxy(s, {
      get(target, name) {
        const value = Reflect.get(target, name);
        if (typeof value !== 'function') return value;
        if (name === 'bind') return (/** @type {unknown[]} */ ...args) => statement(value.apply(target, args));
        return (/** @type {unknown[]} */ ...args) => {
          if (name === 'run' || name === 'all' || name === 'first' || name === 'raw') d1.statements += 1;
          return value.apply(target, args);
        };
      },
    });
  return new Proxy(db, {
    get(target, name) {
      const value = Reflect.get(target, name);
      if (typeof value !== 'function') return value;
      if (name === 'prepare') return (/** @type {string} */ sql) => statement(value.call(target, sql));
      return (/** @type {unknown[]} */ ...args) => {
        if (name === 'batch') d1.batches += 1;
        return value.apply(target, args);
      };
    },
  });
}
/**
 * A D1 stand-in for the trail's writes that only waits, as a round trip to a remote database
 * does: what the trail costs the Worker itself, without the local SQLite that wrangler dev runs on
 * this machine's cores (production's D1 is elsewhere). It counts statements like countingD1.
 * @returns {D1Database}
 */
function remoteLikeD1() {
  const statement = {
    bind: () => statement,
    run: async () => {
      d1.statements += 1;
      await scheduler.wait(20);
      return { success: true, meta: {}, results: [] };
    },
  };
  return /** @type {D1Database} */ (/** @type {unknown} */ ({ prepare: () => statement }));
}

/** One wrapped environment per real one: the Worker memoizes its configuration per `env` object. */
const wrapped = new WeakMap();

/** @param {Record<string, unknown> & { OAUTH_KV: KVNamespace }} env */
function countingEnv(env) {
  let result = wrapped.get(env);
  if (!result) {
    const kv = new Proxy(env.OAUTH_KV, {
      get(target, name) {
        const value = Reflect.get(target, name);
        if (typeof value !== 'function') return value;
        return (/** @type {unknown[]} */ ...args) => {
          if (typeof name === 'string' && name in counts) counts[/** @type {keyof typeof counts} */ (name)] += 1;
          return value.apply(target, args);
        };
      },
    });
    const single = { ...env, OAUTH_KV: kv, ...(env.AUDIT_DB ? { AUDIT_DB: countingD1(/** @type {D1Database} */ (env.AUDIT_DB)) } : {}) };
    const { UPSTREAM_URL: _url, UPSTREAM_TOKEN: _token, BENCH_UPSTREAMS, ...rest } = single;
    const { AUDIT_DB: _db, ...trailOff } = single;
    result = { single, several: { ...rest, UPSTREAMS: BENCH_UPSTREAMS }, trailOff, trailRemote: { ...trailOff, AUDIT_DB: remoteLikeD1() } };
    wrapped.set(env, result);
  }
  return result;
}

export default {
  /** @type {ExportedHandlerFetchHandler<Record<string, unknown> & { OAUTH_KV: KVNamespace }>} */
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === '/__bench/kv') {
      const snapshot = { ...counts };
      if (url.searchParams.has('reset')) for (const name of Object.keys(counts)) counts[/** @type {keyof typeof counts} */ (name)] = 0;
      return Response.json(snapshot);
    }
    if (url.pathname.startsWith('/__bench/bare/')) {
      const target = new URL(`${url.pathname.slice('/__bench/bare/'.length)}${url.search}`, String(env.UPSTREAM_URL));
      const headers = new Headers(request.headers);
      headers.set('Authorization', `Bearer ${env.UPSTREAM_TOKEN}`);
      return fetch(target, { method: request.method, headers, body: request.body });
    }
    if (url.pathname.startsWith('/__bench/peer/')) {
      const target = new URL(`${url.pathname.slice('/__bench/peer/'.length)}${url.search}`, String(env.UPSTREAM_URL));
      return peerForward(request, target, env.OAUTH_KV);
    }
    if (url.pathname === '/__bench/d1') {
      const snapshot = { ...d1 };
      if (url.searchParams.has('reset')) Object.assign(d1, { statements: 0, batches: 0 });
      return Response.json(snapshot);
    }
    const { single, several, trailOff, trailRemote } = countingEnv(env);
    // `X-Bench-Trail: off`: the same configuration without AUDIT_DB, the trail's "off" row.
    const trail = request.headers.get('X-Bench-Trail');
    const gatewayEnv = url.hostname === 'localhost' ? several : trail === 'off' ? trailOff : trail === 'remote' ? trailRemote : single;
    if (url.pathname === '/__bench/quiet-client' && request.method === 'POST') {
      quietClients.add(await request.text());
      return new Response(null, { status: 204 });
    }
    if (url.pathname === '/__bench/peer-token' && request.method === 'POST') {
      await registerPeerToken(env.OAUTH_KV, await request.text(), String(env.UPSTREAM_TOKEN));
      return new Response(null, { status: 204 });
    }
    if (url.pathname === '/__bench/vault' && request.method === 'POST') {
      const { email, upstream, token } = await request.json();
      const config = configFor(gatewayEnv);
      if (!('tokenKeys' in config)) return new Response('misconfigured', { status: 500 });
      await new TokenVault(env.OAUTH_KV, config.tokenKeys).save(email, upstream, token);
      return new Response(null, { status: 204 });
    }
    if (url.pathname === '/__bench/stage') return runStage(request, gatewayEnv, ctx);
    return worker.fetch(/** @type {never} */ (request), /** @type {never} */ (gatewayEnv), ctx);
  },
};

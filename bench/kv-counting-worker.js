// @ts-check
/**
 * Bench-only entry: the real Worker (src/index.ts) with its OAUTH_KV binding wrapped to count
 * operations, and `/__bench/kv` to read (and `?reset`) the counts. Used by proxy-latency.mjs via
 * `wrangler dev bench/kv-counting-worker.js`; never deployed.
 *
 * `/__bench/bare/<path>` is the baseline for the streaming figures: the least a Worker can do, a
 * fetch of `<path>` under UPSTREAM_URL whose body is returned untouched (no auth, no checks).
 */
import worker from '../src/index';

const counts = { get: 0, getWithMetadata: 0, put: 0, delete: 0, list: 0 };
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
    result = { ...env, OAUTH_KV: kv };
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
      const upstream = await fetch(target, { method: request.method, headers: request.headers, body: request.body });
      return new Response(upstream.body, upstream);
    }
    return worker.fetch(/** @type {never} */ (request), /** @type {never} */ (countingEnv(env)), ctx);
  },
};

// @ts-check
/**
 * Bench-only: the request path of the lightest public peer we compare against, one KV read then
 * forward. The bearer token's SHA-256 names a KV record holding the upstream credential; every
 * client header is copied, the credential swapped in, and the answer returned untouched. No
 * audience, expiry, allowlist, CORS or log: the floor a KV-backed gateway cannot go under.
 * Served by kv-counting-worker.js at `/__bench/peer/<path>`; never deployed.
 */

const PREFIX = 'bench-peer:';

/** @param {string} token */
async function keyFor(token) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token));
  return PREFIX + [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Stores what the peer needs for this token (bench setup). @param {KVNamespace} kv @param {string} token @param {string} upstreamToken */
export async function registerPeerToken(kv, token, upstreamToken) {
  await kv.put(await keyFor(token), JSON.stringify({ upstreamToken }));
}

/**
 * @param {Request} request
 * @param {URL} target
 * @param {KVNamespace} kv
 */
export async function peerForward(request, target, kv) {
  const token = /^Bearer\s+(\S+)$/i.exec(request.headers.get('Authorization') ?? '')?.[1];
  if (!token) return new Response('unauthorized', { status: 401 });
  const record = /** @type {{ upstreamToken: string } | null} */ (await kv.get(await keyFor(token), 'json'));
  if (!record) return new Response('unauthorized', { status: 401 });
  const headers = new Headers(request.headers);
  headers.set('Authorization', `Bearer ${record.upstreamToken}`);
  return fetch(target, { method: request.method, headers, body: request.body });
}

/**
 * The scheduled sweep: workers-oauth-provider's `purgeExpiredData`, which removes grants that
 * expired or whose client is gone, and tokens whose grant is gone. KV's own TTLs already drop
 * most expired records; this is the library's defense in depth for the rest (a partly failed
 * revocation, a deleted client's grants).
 *
 * A cron run has no request, so no origin, while the gateway's authorization servers are built
 * per origin (the issuer is the origin the client used). The sweep reads and deletes only
 * `grant:`, `token:` and `client:` records, which are keyed by user, grant and client and carry
 * no issuer or resource, so one authorization server made for the sweep, on a placeholder origin
 * that can never be served, purges exactly what any origin's would. Building it from a stored
 * "last seen origin" would cost a KV write per request, and a GATEWAY_ORIGIN setting one more
 * secret to get right, for no difference in what is purged.
 */
import { OAuthAuthorizationServer, type PurgeResult } from '@cloudflare/workers-oauth-provider';
import { emit } from './audit';

/** RFC 6761 reserves `.invalid`: this origin never serves a request or issues a token. */
const SWEEP_ORIGIN = 'https://purge.invalid';
const CURSOR_KEY = 'gateway:purge-cursor';
/** Records per phase per call. Each checked record costs a KV read or more, and an invocation may make 1,000 KV calls. */
export const PURGE_BATCH_SIZE = 100;
/** Calls per run; an unfinished sweep resumes from its stored cursor at the next run. */
export const PURGE_CALLS_PER_RUN = 2;

let sweeper: OAuthAuthorizationServer<Env> | undefined;

/** Continues (or starts) the sweep: up to PURGE_CALLS_PER_RUN batches, then stores where it stopped. */
export async function purgeExpiredData(env: Env): Promise<PurgeResult[]> {
  sweeper ??= new OAuthAuthorizationServer<Env>({
    issuer: SWEEP_ORIGIN,
    resources: [`${SWEEP_ORIGIN}/mcp`],
    authorizeEndpoint: '/authorize',
    tokenEndpoint: '/token',
  });
  const stored = (await env.OAUTH_KV.get(CURSOR_KEY)) ?? undefined;
  let cursor = stored;
  const results: PurgeResult[] = [];
  for (let call = 0; call < PURGE_CALLS_PER_RUN; call++) {
    const result = await sweeper.purgeExpiredData(env, { batchSize: PURGE_BATCH_SIZE, ...(cursor ? { cursor } : {}) });
    results.push(result);
    cursor = result.cursor;
    if (result.done) break;
  }
  // Written only when it changed: the free plan allows 1,000 KV writes a day.
  if (cursor && cursor !== stored) await env.OAUTH_KV.put(CURSOR_KEY, cursor);
  else if (!cursor && stored) await env.OAUTH_KV.delete(CURSOR_KEY);
  const total = (name: 'grantsChecked' | 'grantsPurged' | 'tokensChecked' | 'tokensPurged') => results.reduce((sum, r) => sum + r[name], 0);
  emit({
    event: 'purge',
    grantsChecked: total('grantsChecked'),
    grantsPurged: total('grantsPurged'),
    tokensChecked: total('tokensChecked'),
    tokensPurged: total('tokensPurged'),
    done: results.at(-1)?.done ?? false,
  });
  return results;
}

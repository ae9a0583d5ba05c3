/**
 * Requests per person per upstream: one Durable Object per (upstream, person), so the count is
 * exact and global (every Cloudflare location asks the same object), at the cost of one round trip
 * to wherever that object lives. The Workers Rate Limiting binding was the other candidate: it
 * answers locally, but counts per location (approximately), fixes its limit and its period (10 or
 * 60 s only) per binding in wrangler.jsonc, and so cannot carry a per-upstream `rateLimit`.
 */
import { DurableObject } from 'cloudflare:workers';
import type { RateLimitConfig } from '../config';

export type RateLimitVerdict = { ok: true } | { ok: false; retryAfterMs: number };

/**
 * A generic cell rate algorithm (GCRA): `requests` spread evenly over `period`, with a burst of
 * `requests`. Equivalent to a sliding window without storing one timestamp per request: the only
 * state is the theoretical arrival time of the next request, kept in storage so that eviction of
 * an idle object does not hand out a fresh allowance.
 */
export class RateLimiter extends DurableObject {
  /**
   * Takes `cost` requests at once (a batch's), or none: a cost that would cross the limit is
   * refused whole, and the verdict says when it would fit. `cost` defaults to 1 for callers of
   * the previous version during a deploy.
   */
  take(requests: number, periodMs: number, cost = 1): RateLimitVerdict {
    const now = Date.now();
    const interval = periodMs / requests;
    const stored = this.ctx.storage.kv.get<number>('tat') ?? 0;
    const next = Math.max(stored, now) + interval * cost;
    const allowedAt = next - periodMs;
    if (allowedAt > now) return { ok: false, retryAfterMs: Math.ceil(allowedAt - now) };
    this.ctx.storage.kv.put('tat', next);
    return { ok: true };
  }
}

/** Counts `cost` requests by `email` on `upstream`, all or none; `undefined` when the limiter could not answer. */
export async function takeRequests(limit: RateLimitConfig, upstream: string, email: string, cost: number): Promise<RateLimitVerdict | undefined> {
  // The binding is this class's namespace (wrangler.jsonc); configuration leaves it untyped.
  const namespace = limit.limiter as unknown as DurableObjectNamespace<RateLimiter>;
  const stub = namespace.get(namespace.idFromName(`${upstream}\n${email}`));
  try {
    return await stub.take(limit.requests, limit.periodSeconds * 1000, cost);
  } catch (error) {
    console.warn(JSON.stringify({ event: 'rate_limiter_unavailable', upstream, email, error: error instanceof Error ? error.name : 'unknown' }));
    return undefined;
  }
}

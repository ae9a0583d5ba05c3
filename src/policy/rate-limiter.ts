/**
 * Requests per person per upstream: one Durable Object per (upstream, person), so the count is
 * exact and global (every Cloudflare location asks the same object), at the cost of one round trip
 * to wherever that object lives. The Workers Rate Limiting binding was the other candidate: it
 * answers locally, but counts per location (approximately), fixes its limit and its period (10 or
 * 60 s only) per binding in wrangler.jsonc, and so cannot carry a per-upstream `rateLimit`.
 */
import { DurableObject } from 'cloudflare:workers';
import type { RateLimitConfig } from '../config/policy';

export type RateLimitVerdict = { ok: true } | { ok: false; retryAfterMs: number };

/**
 * A generic cell rate algorithm (GCRA): `requests` spread evenly over `period`, with a burst of
 * `requests`. Equivalent to a sliding window without storing one timestamp per request: the only
 * state is the theoretical arrival time of the next request, kept in storage so that eviction of
 * an idle object does not hand out a fresh allowance.
 */
export class RateLimiter extends DurableObject {
  take(requests: number, periodMs: number): RateLimitVerdict {
    const now = Date.now();
    const interval = periodMs / requests;
    const stored = this.ctx.storage.kv.get<number>('tat') ?? 0;
    const next = Math.max(stored, now) + interval;
    const allowedAt = next - periodMs;
    if (allowedAt > now) return { ok: false, retryAfterMs: Math.ceil(allowedAt - now) };
    this.ctx.storage.kv.put('tat', next);
    return { ok: true };
  }
}

/** Counts one request by `email` on `upstream`; `undefined` when the limiter could not answer. */
export async function takeRequest(limit: RateLimitConfig, upstream: string, email: string): Promise<RateLimitVerdict | undefined> {
  const stub = limit.limiter.get(limit.limiter.idFromName(`${upstream}\n${email}`));
  try {
    return await stub.take(limit.requests, limit.periodSeconds * 1000);
  } catch (error) {
    console.warn(JSON.stringify({ event: 'rate_limiter_unavailable', upstream, email, error: error instanceof Error ? error.name : 'unknown' }));
    return undefined;
  }
}

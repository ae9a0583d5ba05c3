/**
 * Validated access tokens, remembered in the isolate for a short while so a busy connector costs
 * no KV read (and no key unwrap and props decryption) per request.
 *
 * - Keyed by the SHA-256 of the token, never the token, and by the resource it was checked for.
 * - Bounded: at most `maxEntries`, the oldest dropped first; each entry lives `ttlMs` at most.
 * - The token's own expiry is checked again on every hit.
 * - Revocation through this isolate (any /token request naming the grant, which covers RFC 7009,
 *   a refused refresh and a replayed code; /connections; a new grant replacing an old one) calls
 *   `forgetGrant` before and after the KV delete, so the token stops here at once. Another isolate keeps serving its entry until `ttlMs` runs out: the bound
 *   the README states next to KV's own propagation delay (about 60 s).
 * - The allowlists are not part of the entry: src/mcp.ts checks them on every request, hit or not.
 */
import type { OAuthResourceTokenValidation } from '@cloudflare/workers-oauth-provider';
import { sha256 } from '../lib';

/** Far below KV's own propagation delay (up to about 60 s), so it does not widen revocation much. */
export const TOKEN_CACHE_TTL_MS = 30_000;
export const TOKEN_CACHE_MAX_ENTRIES = 10_000;

export interface TokenCacheOptions {
  ttlMs?: number;
  maxEntries?: number;
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
}

interface Entry<Props> {
  validation: OAuthResourceTokenValidation<Props>;
  /** `<userId>:<grantId>`, to forget every token of a revoked grant. */
  grant: string;
  until: number;
}

type Validator<Props> = (resource: string, token: string) => Promise<OAuthResourceTokenValidation<Props> | null>;

export class TokenCache<Props> {
  readonly #entries = new Map<string, Entry<Props>>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  /** Bumped by every revocation: a check that was in flight meanwhile is not remembered. */
  #epoch = 0;

  constructor(options: TokenCacheOptions = {}) {
    this.#ttlMs = options.ttlMs ?? TOKEN_CACHE_TTL_MS;
    this.#maxEntries = options.maxEntries ?? TOKEN_CACHE_MAX_ENTRIES;
    this.#now = options.now ?? (() => Date.now());
  }

  get size(): number {
    return this.#entries.size;
  }

  /** `validate`'s answer for this token and resource, from the cache while it is fresh. */
  async validate(resource: string, token: string, validate: Validator<Props>): Promise<OAuthResourceTokenValidation<Props> | null> {
    const grant = grantOfToken(token);
    // Not one of the library's tokens: nothing to remember it by, and nothing to revoke it with.
    if (grant === undefined) return validate(resource, token);
    const key = `${resource} ${await sha256(token)}`;
    const now = this.#now();
    const hit = this.#entries.get(key);
    if (hit) {
      if (hit.until > now && !isExpired(hit.validation, now)) return hit.validation;
      this.#entries.delete(key);
    }

    const epoch = this.#epoch;
    const validation = await validate(resource, token);
    // Only successes are kept: an unknown token always asks KV, so a new one works at once.
    if (validation && epoch === this.#epoch && !isExpired(validation, this.#now())) {
      if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value as string);
      this.#entries.set(key, { validation, grant, until: now + this.#ttlMs });
    }
    return validation;
  }

  /** Forgets every token of this grant in this isolate (call before and after revoking it in KV). */
  forgetGrant(userId: string, grantId: string): void {
    this.#epoch += 1;
    const grant = `${userId}:${grantId}`;
    for (const [key, entry] of this.#entries) if (entry.grant === grant) this.#entries.delete(key);
  }

  /** `forgetGrant` for the grant a token, refresh token or code names; false when it names none. */
  forgetGrantOf(token: string): boolean {
    const grant = grantOfToken(token);
    if (grant === undefined) return false;
    const colon = grant.lastIndexOf(':');
    this.forgetGrant(grant.slice(0, colon), grant.slice(colon + 1));
    return true;
  }
}

/**
 * `<userId>:<grantId>` of a token the library issued (`<userId>:<grantId>:<secret>`, read from
 * the right because a user ID may contain `:`), or undefined for anything else.
 */
export function grantOfToken(token: string): string | undefined {
  const last = token.lastIndexOf(':');
  const middle = last > 0 ? token.lastIndexOf(':', last - 1) : -1;
  if (middle <= 0 || middle + 1 === last || last + 1 === token.length) return undefined;
  return token.slice(0, last);
}

function isExpired(validation: OAuthResourceTokenValidation<unknown>, nowMs: number): boolean {
  return validation.expiresAt !== undefined && validation.expiresAt * 1000 <= nowMs;
}

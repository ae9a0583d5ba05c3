/**
 * MAX_GRANT_AGE (issue #16): a grant lives at most that long after its Access sign-in, however
 * often its client refreshes, so a person removed in Access or the IdP has to get past Access
 * again within that time. The sign-in time is the grant's `signedInAt` prop.
 */
import type { TokenExchangeCallbackResult } from '@cloudflare/workers-oauth-provider';
import type { Identity } from '../identity';

/** KV's minimum expiration: the library issues no token that lives less. */
const MIN_TOKEN_TTL = 60;

export interface GrantLimits {
  maxGrantAge: number;
  accessTokenTtl: number;
  refreshTokenTtl: number;
}

/** Seconds since the epoch, on the clock the library checks expiry with. */
export function nowInSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** The props of a grant made now: who signed in through Access, and when. */
export function stampSignIn(identity: Identity, now = nowInSeconds()): Identity {
  return { ...identity, signedInAt: now };
}

/**
 * What a code exchange or refresh of this grant may issue: lifetimes that end by the grant's age
 * limit, and, for a grant made before issue #16, the stamp that counts it from now. Undefined
 * once less than a minute is left, too little for any token: the exchange must fail.
 */
export function grantTerms(props: Identity, now: number, limits: GrantLimits): TokenExchangeCallbackResult | undefined {
  const stamped = typeof props.signedInAt === 'number' && Number.isFinite(props.signedInAt);
  // A stamp ahead of the clock (the clock went back) counts from now: no token outlives the limit.
  const signedInAt = stamped ? Math.min(props.signedInAt as number, now) : now;
  const left = signedInAt + limits.maxGrantAge - now;
  if (left < MIN_TOKEN_TTL) return undefined;
  const refreshTtl = Math.min(limits.refreshTokenTtl, left);
  return {
    ...(stamped ? {} : { newProps: stampSignIn(props, signedInAt) }),
    accessTokenTTL: Math.min(limits.accessTokenTtl, left),
    // The library reads the first at a code exchange and the second at a refresh (where it sets
    // the grant's expiry), ignoring the other: together the grant expires by its age limit.
    refreshTokenTTL: refreshTtl,
    refreshTokenIdleTTL: refreshTtl,
  };
}

/**
 * Re-validation with Access (issue #19): at each refresh of the gateway's tokens, a grant that
 * holds Access's refresh token asks Access again who the person is. Access's `invalid_grant` means
 * they may no longer sign in (removed, session revoked); Access failing in any other way says
 * nothing about the person and must not end their grant.
 */
import * as oauth from 'oauth4webapi';
import type { AccessConfig } from '../config';
import type { Identity } from '../identity';
import { groupsFromClaims } from './groups';
import { accessOidc } from './oidc';

const ACCESS_TIMEOUT_MS = 10_000;
/** How long a refresh's answer serves the other refreshes of the same grant in this isolate. */
const SHARED_ANSWER_MS = 60_000;
const SHARED_ANSWERS_MAX = 1_000;

/**
 * Answers by the Access refresh token they spent. Clients race on refresh (several sessions
 * share one refresh token, REFERENCE: the library keeps the previous one valid once), and Access
 * may rotate its refresh token: a second refresh with the spent one would read as a removal.
 * Only this isolate's races are covered; another isolate's still ask Access with the spent token.
 */
const sharedAnswers = new Map<string, { answer: Promise<Revalidation>; until: number }>();

/**
 * What a grant's props hold: who signed in and, when the Access app issues refresh tokens, the
 * latest one. The library encrypts props with a key only the grant's token holders can unwrap;
 * the Access refresh token never goes into an access token's props, a page or a log.
 */
export interface GrantProps extends Identity {
  accessRefreshToken?: string;
}

/** What asking Access again gave: the grant's new props, or why it cannot go on (for the log only). */
export type Revalidation = { outcome: 'refreshed'; props: GrantProps } | { outcome: 'removed'; reason: string } | { outcome: 'unavailable'; reason: string };

/** The identity alone: what an access token carries and what the MCP handler sees. */
export function identityOf({ accessRefreshToken: _kept, ...identity }: GrantProps): Identity {
  return identity;
}

/**
 * Refreshes with Access (client secret) and, when an ID token comes, checks it as a login's is
 * checked: `iss`, `aud`, `exp`, `iat` and the algorithm by oauth4webapi, the signature against
 * Access's JWKS, and the same `sub`. Its email, groups and name replace the old; the rotated
 * refresh token replaces the old one. Without an ID token the identity stays as it was.
 */
export function revalidateWithAccess(access: AccessConfig, props: GrantProps & { accessRefreshToken: string }): Promise<Revalidation> {
  const now = Date.now();
  for (const [token, shared] of sharedAnswers) if (shared.until <= now) sharedAnswers.delete(token);
  const shared = sharedAnswers.get(props.accessRefreshToken);
  if (shared) return shared.answer;
  const answer = askAccess(access, props);
  if (sharedAnswers.size < SHARED_ANSWERS_MAX) {
    sharedAnswers.set(props.accessRefreshToken, { answer, until: now + SHARED_ANSWER_MS });
    // Only a refresh is shared beyond its flight: after a refusal or an outage, the next one asks again.
    const forget = () => sharedAnswers.delete(props.accessRefreshToken);
    void answer.then((settled) => settled.outcome === 'refreshed' || forget(), forget);
  }
  return answer;
}

async function askAccess(access: AccessConfig, props: GrantProps & { accessRefreshToken: string }): Promise<Revalidation> {
  const { as, client } = accessOidc(access);
  const requestOptions = () => ({
    [oauth.allowInsecureRequests]: access.allowInsecureRequests,
    signal: AbortSignal.timeout(ACCESS_TIMEOUT_MS),
  });
  let response: Response;
  try {
    response = await oauth.refreshTokenGrantRequest(as, client, oauth.ClientSecretPost(access.clientSecret), props.accessRefreshToken, requestOptions());
  } catch (error) {
    return { outcome: 'unavailable', reason: `token endpoint unreachable: ${errorName(error)}` };
  }
  let result: oauth.TokenEndpointResponse;
  try {
    result = await oauth.processRefreshTokenResponse(as, client, response);
  } catch (error) {
    // RFC 6749 §5.2: invalid_grant is a refresh token that is invalid, expired or revoked.
    if (error instanceof oauth.ResponseBodyError && error.error === 'invalid_grant') return { outcome: 'removed', reason: 'access_invalid_grant' };
    if (error instanceof oauth.ResponseBodyError) return { outcome: 'unavailable', reason: `token endpoint refused: ${error.error} (${error.status})` };
    return { outcome: 'unavailable', reason: `token endpoint failed: ${errorName(error)} (${response.status})` };
  }
  const claims = oauth.getValidatedIdTokenClaims(result);
  if (claims) {
    try {
      await oauth.validateApplicationLevelSignature(as, response, requestOptions());
    } catch (error) {
      return { outcome: 'unavailable', reason: `id token signature not verified: ${errorName(error)}` };
    }
  }
  const identity = claims ? identityFromClaims(claims, identityOf(props)) : identityOf(props);
  if (typeof identity === 'string') return { outcome: 'removed', reason: identity };
  return { outcome: 'refreshed', props: { ...identity, accessRefreshToken: result.refresh_token ?? props.accessRefreshToken } };
}

/**
 * Who a refreshed ID token says the person is now, or why it cannot be them. A missing `email`
 * or `name` keeps the old one; a missing `groups` claim is no groups, a malformed one is refused
 * as it is at a login (one reader for both: `groupsFromClaims`).
 */
export function identityFromClaims(claims: oauth.IDToken, previous: Identity): Identity | string {
  if (claims.sub !== previous.sub) return 'id_token_other_subject';
  const groups = groupsFromClaims(claims);
  if ('refusal' in groups) return 'id_token_malformed_groups';
  const email = typeof claims.email === 'string' ? claims.email.trim().toLowerCase() : '';
  const { groups: _old, ...rest } = previous;
  return {
    ...rest,
    ...(email !== '' ? { email } : {}),
    ...(typeof claims.name === 'string' ? { name: claims.name } : {}),
    ...(claims.groups === undefined ? {} : { groups: groups.groups }),
  };
}

function errorName(error: unknown): string {
  if (error instanceof oauth.OperationProcessingError) return `${error.name} ${error.code ?? ''}`.trim();
  return error instanceof Error ? error.name : 'unknown';
}

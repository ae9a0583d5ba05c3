/**
 * What the authorization server asks before it issues tokens for a grant (its
 * `tokenExchangeCallback`): at a refresh, whether the person may still use the upstream; at every
 * exchange, the lifetimes left before the grant's age limit (MAX_GRANT_AGE).
 */
import { OAuthError, type TokenExchangeCallbackOptions, type TokenExchangeCallbackResult } from '@cloudflare/workers-oauth-provider';
import type { Config, UpstreamConfig } from '../config';
import type { GrantTokenCache } from '../context';
import type { Identity } from '../identity';
import { grantTerms, nowInSeconds, refusalFor } from '../permissions';

/** The callback for this configuration's servers; a refusal also forgets the grant's cached tokens. */
export function exchangeDecisions(config: Config, upstreamFor: (resource: string | undefined) => UpstreamConfig | undefined, tokenCache: GrantTokenCache) {
  return ({ grantType, props, resource, userId, grantId }: TokenExchangeCallbackOptions): TokenExchangeCallbackResult | undefined => {
    if (grantType !== 'authorization_code' && grantType !== 'refresh_token') return;
    const identity = props as Identity;
    const upstream = upstreamFor(resource);
    const refuse = (description: string, reason: string): never => {
      // invalid_grant makes the library revoke the grant and its tokens; /token forgets it again after.
      tokenCache.forgetGrant(userId, grantId);
      throw new OAuthError('invalid_grant', { description, internal: { category: 'token-exchange-callback', reason } });
    };
    if (grantType === 'refresh_token' && (!upstream || refusalFor(config, upstream, identity))) {
      refuse('this account is no longer allowed', 'not_allowed');
    }
    return grantTerms(identity, nowInSeconds(), config) ?? refuse('this sign-in has reached its maximum age: sign in again', 'max_grant_age');
  };
}

/**
 * What the authorization server asks before it issues tokens for a grant (its
 * `tokenExchangeCallback`): at a refresh, Access again when the grant holds its refresh token
 * (issue #19), then whether the person may still use the upstream (for an aggregate, any of its upstreams); at every exchange, the
 * lifetimes left before the grant's age limit (MAX_GRANT_AGE).
 */
import { OAuthError, type TokenExchangeCallbackOptions, type TokenExchangeCallbackResult } from '@cloudflare/workers-oauth-provider';
import type { Config, GatewayResource } from '../config';
import type { GrantTokenCache } from '../context';
import { grantTerms, nowInSeconds, refusalForAny } from '../permissions';
import { type GrantProps, identityOf, revalidateWithAccess } from '../sign-in';

/** The callback for this configuration's servers; a refusal also forgets the grant's cached tokens. */
export function exchangeDecisions(config: Config, resourceFor: (resource: string | undefined) => GatewayResource | undefined, tokenCache: GrantTokenCache) {
  return async ({ grantType, props, resource, userId, grantId }: TokenExchangeCallbackOptions): Promise<TokenExchangeCallbackResult | undefined> => {
    if (grantType !== 'authorization_code' && grantType !== 'refresh_token') return;
    let grant = props as GrantProps;
    const target = resourceFor(resource);
    const refuse = (description: string, reason: string): never => {
      // invalid_grant makes the library revoke the grant and its tokens; /token forgets it again after.
      tokenCache.forgetGrant(userId, grantId);
      throw new OAuthError('invalid_grant', { description, internal: { category: 'token-exchange-callback', reason } });
    };
    const tooOld = () => refuse('this sign-in has reached its maximum age: sign in again', 'max_grant_age');
    // An old grant ends without asking Access (whose refresh token would rotate for nothing).
    if (!grantTerms(grant, nowInSeconds(), config)) tooOld();

    let revalidated = false;
    if (grantType === 'refresh_token' && grant.accessRefreshToken) {
      const answer = await revalidateWithAccess(config.access, { ...grant, accessRefreshToken: grant.accessRefreshToken });
      if (answer.outcome === 'removed') refuse('sign-in provider no longer accepts this sign-in: sign in again', answer.reason);
      if (answer.outcome === 'unavailable') {
        // Not a removal: the grant and this refresh token stay, so the client's retry can work.
        throw new OAuthError('temporarily_unavailable', {
          description: 'the sign-in provider could not be reached: try again shortly',
          statusCode: 503,
          internal: { category: 'token-exchange-callback', reason: answer.reason },
        });
      }
      if (answer.outcome === 'refreshed') {
        grant = answer.props;
        revalidated = true;
      }
    }

    const identity = identityOf(grant);
    if (grantType === 'refresh_token' && (!target || refusalForAny(config, target.upstreams, identity))) {
      refuse('this account is no longer allowed', 'not_allowed');
    }
    const terms = grantTerms(grant, nowInSeconds(), config) ?? tooOld();
    const newProps: GrantProps | undefined = terms.newProps ?? (revalidated ? grant : undefined);
    return {
      ...terms,
      ...(newProps ? { newProps } : {}),
      // Access's refresh token stays in the grant: an access token carries the identity alone.
      ...(grant.accessRefreshToken ? { accessTokenProps: identityOf(newProps ?? grant) } : {}),
    };
  };
}

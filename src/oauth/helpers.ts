import type { OAuthHelpers } from '@cloudflare/workers-oauth-provider';
import type { OriginGateway } from '../context';

/** The library's helpers, with `revokeGrant` (also when it calls it itself) forgetting the grant's cached tokens. */
export function helpersFor(gateway: OriginGateway, env: Env): OAuthHelpers {
  const helpers = gateway.authorizationServer.getOAuthApi(env);
  const cache = gateway.tokenCache;
  const revokeGrant = async (grantId: string, userId: string): Promise<void> => {
    cache.forgetGrant(userId, grantId);
    try {
      await helpers.revokeGrant(grantId, userId);
    } finally {
      cache.forgetGrant(userId, grantId);
    }
  };
  // The receiver stays the proxy, so the library's own `this.revokeGrant` (a new grant replacing
  // the client's old one) comes through here too.
  return new Proxy(helpers, { get: (target, name, receiver) => (name === 'revokeGrant' ? revokeGrant : Reflect.get(target, name, receiver)) });
}

import type * as oauth from 'oauth4webapi';
import type { AccessConfig } from '../config';

/** Access for SaaS signs ID tokens with RS256; anything else (including `none`) is refused. */
export const ID_TOKEN_ALG = 'RS256';

export interface AccessOidc {
  as: oauth.AuthorizationServer;
  client: oauth.Client;
}

const cache = new WeakMap<AccessConfig, AccessOidc>();

/**
 * oauth4webapi's view of the Access app. Memoized per configuration because oauth4webapi caches
 * the JWKS per `as` object: a stable object means one key fetch per isolate, not one per login.
 */
export function accessOidc(access: AccessConfig): AccessOidc {
  let oidc = cache.get(access);
  if (!oidc) {
    oidc = {
      as: {
        issuer: access.issuer,
        authorization_endpoint: access.authorizationUrl,
        token_endpoint: access.tokenUrl,
        jwks_uri: access.jwksUrl,
        id_token_signing_alg_values_supported: [ID_TOKEN_ALG],
      },
      client: { client_id: access.clientId, id_token_signed_response_alg: ID_TOKEN_ALG },
    };
    cache.set(access, oidc);
  }
  return oidc;
}

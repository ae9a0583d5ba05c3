/**
 * The end of an Access sign-in, whatever its purpose: Access's code exchanged, the ID token
 * verified, and who signed in.
 */
import * as oauth from 'oauth4webapi';
import type { AccessConfig } from '../config';
import type { Identity } from '../identity';
import { PageError, type StartAgain } from '../pages';
import { type AccessLoginData, CALLBACK_PATH } from './access-url';
import { groupsFromClaims } from './groups';
import { accessOidc } from './oidc';

const ACCESS_TIMEOUT_MS = 10_000;

/** Who signed in, and Access's refresh token when its app issues one (for the grant's props only). */
export interface AccessSignIn {
  identity: Identity;
  refreshToken?: string;
}

/** Who signed in: {@link verifyAccessSignIn} without Access's refresh token, for sign-ins that make no grant. */
export async function verifyAccessLogin(...args: Parameters<typeof verifyAccessSignIn>): Promise<Identity> {
  return (await verifyAccessSignIn(...args)).identity;
}

/**
 * Exchanges Access's code (client secret + PKCE) and verifies the ID token: `iss`, `aud`, `exp`,
 * `iat`, `nonce` and the expected algorithm by oauth4webapi's processing, then the signature
 * against Access's JWKS (cached; an unknown `kid` refetches), then a non-empty `email` and a
 * well-formed `groups` claim, if any.
 */
export async function verifyAccessSignIn(
  access: AccessConfig,
  callbackUrl: URL,
  data: AccessLoginData,
  headers: Headers,
  startAgain: StartAgain = 'app',
): Promise<AccessSignIn> {
  const { as, client } = accessOidc(access);
  const fail = (reason: string, cause: unknown) => new PageError('sign_in_failed', reason, { cause, headers, startAgain });
  const requestOptions = () => ({
    [oauth.allowInsecureRequests]: access.allowInsecureRequests,
    signal: AbortSignal.timeout(ACCESS_TIMEOUT_MS),
  });

  let params: URLSearchParams;
  try {
    // finishLogin (state.ts) already checked `state` and its browser binding.
    params = oauth.validateAuthResponse(as, client, callbackUrl, oauth.skipStateCheck);
  } catch (error) {
    throw new PageError('sign_in_malformed', describe('callback', error), { cause: error, headers, startAgain });
  }

  let response: Response;
  try {
    response = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      oauth.ClientSecretPost(access.clientSecret),
      params,
      `${callbackUrl.origin}${CALLBACK_PATH}`,
      data.verifier,
      requestOptions(),
    );
  } catch (error) {
    throw fail(describe('token endpoint unreachable', error), error);
  }

  let result: oauth.TokenEndpointResponse;
  try {
    result = await oauth.processAuthorizationCodeResponse(as, client, response, {
      expectedNonce: data.nonce,
      requireIdToken: true,
    });
  } catch (error) {
    throw fail(describe(tokenStage(error), error), error);
  }

  try {
    await oauth.validateApplicationLevelSignature(as, response, requestOptions());
  } catch (error) {
    const unreachable = error instanceof TypeError || (error instanceof DOMException && error.name === 'TimeoutError');
    throw fail(describe(unreachable ? 'jwks unreachable' : 'id token signature rejected', error), error);
  }

  const claims = oauth.getValidatedIdTokenClaims(result);
  const email = typeof claims?.email === 'string' ? claims.email.trim().toLowerCase() : '';
  if (!claims || email === '') {
    throw new PageError('no_email', 'id token has no "email" claim', { headers });
  }
  const groups = groupsFromClaims(claims);
  if ('refusal' in groups) throw new PageError('malformed_groups', `id token ${groups.reason}`, { headers, startAgain });
  const identity: Identity = {
    email,
    sub: claims.sub,
    ...(typeof claims.name === 'string' ? { name: claims.name } : {}),
    // Without the claim (ACCESS_SCOPES without `groups`, or an IdP that sends none) none are known.
    ...(claims.groups === undefined ? {} : { groups: groups.groups }),
  };
  return { identity, ...(result.refresh_token ? { refreshToken: result.refresh_token } : {}) };
}

/** Whether Access's token endpoint failed, or answered with an ID token we reject. */
function tokenStage(error: unknown): string {
  if (error instanceof oauth.ResponseBodyError) return 'token endpoint refused';
  if (error instanceof oauth.OperationProcessingError && TOKEN_ENDPOINT_FAILURES.has(error.code ?? '')) return 'token endpoint failed';
  return 'id token rejected';
}

const TOKEN_ENDPOINT_FAILURES = new Set<string>([oauth.RESPONSE_IS_NOT_CONFORM, oauth.RESPONSE_IS_NOT_JSON]);

function describe(stage: string, error: unknown): string {
  if (error instanceof oauth.ResponseBodyError) return `${stage}: ${error.error}`;
  if (error instanceof Error) return `${stage}: ${error.name}${'code' in error ? ` ${String(error.code)}` : ''}: ${error.message}`;
  return stage;
}

import { AuthorizationError, type OAuthHelpers } from '@cloudflare/workers-oauth-provider';
import * as oauth from 'oauth4webapi';
import type { AccessConfig } from '../config';
import type { BrowserLeg } from '../context';
import { PageError } from '../errors';
import type { Identity } from '../identity';
import { offerTokenStep, ownTokenProblem } from '../own-token/login-step';
import { TokenVault } from '../vault/store';
import { allowedUpstream, issueCode } from './complete';
import { type AccessLoginData, CALLBACK_PATH } from './login';
import { accessOidc } from './oidc';

const ACCESS_TIMEOUT_MS = 10_000;

/**
 * GET /callback: Access sends the browser back here. Resumes the approved request (state is
 * single-use and bound to this browser), verifies who signed in, and issues our authorization
 * code to the MCP client, or first asks for the person's own token on a `userSupplied` upstream.
 * On any failure nothing is written: the grant is created last.
 */
export async function handleAccessCallback(request: Request, { helpers, gateway, config, env, ctx }: BrowserLeg): Promise<Response> {
  const resumed = await resumeLogin(request, helpers);
  // These headers clear the browser-binding cookie: send them on every answer from here on.
  const headers = resumed.headers;
  const url = new URL(request.url);

  const accessError = url.searchParams.get('error');
  if (accessError !== null) {
    const denied = accessError === 'access_denied';
    throw new PageError(
      denied ? 403 : 502,
      denied ? 'Sign-in was declined' : 'Sign-in failed',
      denied
        ? 'The sign-in was cancelled, or Cloudflare Access did not let this account in. Go back to your app to try again; if this account should get in, ask whoever manages access to this server.'
        : 'Cloudflare Access could not complete the sign-in. Go back to your app and connect again.',
      `access returned error=${accessError}`,
      { headers },
    );
  }

  const identity = await verifyAccessLogin(config.access, url, resumed.data, headers);
  const upstream = allowedUpstream(gateway, config, resumed.request, identity, headers);
  if (upstream.userSupplied) {
    const problem = await ownTokenProblem(upstream, identity.email, new TokenVault(env.OAUTH_KV, config.tokenKeys), ctx);
    if (problem !== undefined) return offerTokenStep(helpers, resumed.request, identity, upstream, headers, problem);
  }
  return issueCode(helpers, resumed.request, identity, headers);
}

async function resumeLogin(request: Request, helpers: OAuthHelpers) {
  try {
    return await helpers.finishUpstream<AccessLoginData>(request);
  } catch (error) {
    if (!(error instanceof AuthorizationError)) throw error;
    throw new PageError(
      400,
      'This sign-in link no longer works',
      'It has expired, was already used, or was opened in a different browser from the one that started signing in. Go back to your app and connect again.',
      `state refused: ${error.code}: ${error.description}`,
      { cause: error },
    );
  }
}

/**
 * Exchanges Access's code (client secret + PKCE) and verifies the ID token: `iss`, `aud`, `exp`,
 * `iat`, `nonce` and the expected algorithm by oauth4webapi's processing, then the signature
 * against Access's JWKS (cached; an unknown `kid` refetches), then a non-empty `email`.
 */
export async function verifyAccessLogin(access: AccessConfig, callbackUrl: URL, data: AccessLoginData, headers: Headers): Promise<Identity> {
  const { as, client } = accessOidc(access);
  const fail = (status: number, reason: string, cause: unknown) =>
    new PageError(
      status,
      'Sign-in failed',
      'The gateway could not verify your sign-in with Cloudflare Access. Go back to your app and connect again; if it keeps happening, tell whoever runs this server.',
      reason,
      { cause, headers },
    );
  const requestOptions = () => ({
    [oauth.allowInsecureRequests]: access.allowInsecureRequests,
    signal: AbortSignal.timeout(ACCESS_TIMEOUT_MS),
  });

  let params: URLSearchParams;
  try {
    // workers-oauth-provider's finishUpstream already checked `state` and its browser binding.
    params = oauth.validateAuthResponse(as, client, callbackUrl, oauth.skipStateCheck);
  } catch (error) {
    throw new PageError(400, 'Sign-in failed', 'The sign-in response was malformed. Go back to your app and connect again.', describe('callback', error), {
      cause: error,
      headers,
    });
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
    throw fail(502, describe('token endpoint unreachable', error), error);
  }

  let result: oauth.TokenEndpointResponse;
  try {
    result = await oauth.processAuthorizationCodeResponse(as, client, response, {
      expectedNonce: data.nonce,
      requireIdToken: true,
    });
  } catch (error) {
    throw fail(502, describe(tokenStage(error), error), error);
  }

  try {
    await oauth.validateApplicationLevelSignature(as, response, requestOptions());
  } catch (error) {
    const unreachable = error instanceof TypeError || (error instanceof DOMException && error.name === 'TimeoutError');
    throw fail(502, describe(unreachable ? 'jwks unreachable' : 'id token signature rejected', error), error);
  }

  const claims = oauth.getValidatedIdTokenClaims(result);
  const email = typeof claims?.email === 'string' ? claims.email.trim().toLowerCase() : '';
  if (!claims || email === '') {
    throw new PageError(
      403,
      'Sign-in failed',
      'Cloudflare Access did not share an email address for this account, and the gateway needs one.',
      'id token has no "email" claim',
      { headers },
    );
  }
  return { email, sub: claims.sub, ...(typeof claims.name === 'string' ? { name: claims.name } : {}) };
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

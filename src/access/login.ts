import type { AuthRequest, OAuthHelpers } from '@cloudflare/workers-oauth-provider';
import * as oauth from 'oauth4webapi';
import type { AccessConfig } from '../config';

/** What the gateway keeps, encrypted server-side by `beginUpstream`, until Access calls back. */
export interface AccessLoginData {
  verifier: string;
  nonce: string;
}

export const CALLBACK_PATH = '/callback';

/**
 * Sends the browser to Cloudflare Access for an approved request. Call only after consent:
 * `beginUpstream` creates the single-use, browser-bound `state` here, never earlier.
 */
export async function redirectToAccess(
  helpers: OAuthHelpers,
  access: AccessConfig,
  approved: AuthRequest,
  origin: string,
  headers?: Headers,
): Promise<Response> {
  const data = newAccessLogin();
  const upstream = await helpers.beginUpstream(approved, { data, ...(headers ? { headers } : {}) });
  const url = await accessSignInUrl(access, origin, upstream.state, data);
  upstream.headers.set('Location', url.href);
  upstream.headers.set('Cache-Control', 'no-store');
  return new Response(null, { status: 302, headers: upstream.headers });
}

/** A fresh PKCE verifier and nonce for one Access sign-in. */
export function newAccessLogin(): AccessLoginData {
  return { verifier: oauth.generateRandomCodeVerifier(), nonce: oauth.generateRandomNonce() };
}

/** Access's authorization URL for one sign-in that returns to this origin's `/callback`. */
export async function accessSignInUrl(access: AccessConfig, origin: string, state: string, data: AccessLoginData): Promise<URL> {
  return buildAccessAuthorizeUrl(access, {
    redirectUri: `${origin}${CALLBACK_PATH}`,
    state,
    nonce: data.nonce,
    codeChallenge: await oauth.calculatePKCECodeChallenge(data.verifier),
  });
}

function buildAccessAuthorizeUrl(access: AccessConfig, params: { redirectUri: string; state: string; nonce: string; codeChallenge: string }): URL {
  const url = new URL(access.authorizationUrl);
  url.searchParams.set('client_id', access.clientId);
  url.searchParams.set('redirect_uri', params.redirectUri);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('scope', 'openid email profile');
  url.searchParams.set('state', params.state);
  url.searchParams.set('nonce', params.nonce);
  url.searchParams.set('code_challenge', params.codeChallenge);
  url.searchParams.set('code_challenge_method', 'S256');
  return url;
}

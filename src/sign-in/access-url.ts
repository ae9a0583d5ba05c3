import * as oauth from 'oauth4webapi';
import type { AccessConfig } from '../config';

/** What one Access sign-in keeps until Access calls back: its PKCE verifier and nonce. */
export interface AccessLoginData {
  verifier: string;
  nonce: string;
}

/** A /connections sign-in's: also the page to return to (the connections module checks it against its own two paths). */
export interface ConnectionsLoginData extends AccessLoginData {
  returnTo?: string;
}

/** The one redirect URL the Access app knows: every sign-in returns here, whatever its purpose. */
export const CALLBACK_PATH = '/callback';

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
  url.searchParams.set('scope', access.scopes);
  url.searchParams.set('state', params.state);
  url.searchParams.set('nonce', params.nonce);
  url.searchParams.set('code_challenge', params.codeChallenge);
  url.searchParams.set('code_challenge_method', 'S256');
  return url;
}

/**
 * The login-state backend for sign-ins with no OAuth request behind them (/connections): what the
 * callback needs (state, PKCE verifier, nonce, expiry) travels in a sealed (AES-256-GCM) `__Host-`
 * cookie rather than in KV, so an anonymous visit costs no KV write: a script cannot spend the
 * plan's daily writes that everyone's logins and refreshes need. The cookie binds the sign-in to
 * the browser and lasts LOGIN_SECONDS, counted from the sealed time. Its states carry a tag, so
 * the store tells them from the library's without reading anything: also when the cookie is
 * missing (another browser, or one that dropped it after LOGIN_SECONDS), the commonest stale
 * case, whose page must still send the person back to /connections rather than to an app, and
 * clear what is left of the cookie. Telling them apart by the cookie alone could not do that.
 */
import * as oauth from 'oauth4webapi';
import type { Config } from '../config';
import { hostCookie, openSealed, readCookie, sealText } from '../lib';
import { PageError } from '../pages';
import type { ConnectionsLoginData } from './access-url';

const STATE_TAG = 'cx.';
const LOGIN_SECONDS = 600;
const LOGIN_COOKIE = '__Host-connections-login';
const LOGIN_INFO = 'mcp-oauth-gateway connections login v1';
const LOGIN_AAD = new TextEncoder().encode(LOGIN_COOKIE);

/** What the login cookie seals: one Access sign-in, until `exp` (seconds). */
interface PendingLogin extends ConnectionsLoginData {
  state: string;
  exp: number;
}

/** Whether a state is one this backend issued. */
export function isCookieState(state: string): boolean {
  return state.startsWith(STATE_TAG);
}

/** A new state and the Set-Cookie that holds its sign-in. Writes nothing to KV. */
export async function beginCookieLogin(config: Config, data: ConnectionsLoginData): Promise<{ state: string; headers: Headers }> {
  const state = `${STATE_TAG}${oauth.generateRandomState()}`;
  const pending: PendingLogin = { ...data, state, exp: Math.floor(Date.now() / 1000) + LOGIN_SECONDS };
  const sealed = await sealText(config.cookieSecret, LOGIN_INFO, LOGIN_AAD, JSON.stringify(pending));
  const headers = new Headers();
  headers.append('Set-Cookie', hostCookie(LOGIN_COOKIE, sealed, LOGIN_SECONDS));
  return { state, headers };
}

/** The sign-in this browser started with `state`, and the headers every answer from here carries. */
export async function finishCookieLogin(request: Request, config: Config, state: string): Promise<{ data: ConnectionsLoginData; headers: Headers }> {
  const headers = new Headers({ 'Cache-Control': 'no-store' });
  // Single use without storage: every answer from here clears the login cookie, and a copy kept
  // past that is still one use only, since Access's code is single-use itself (RFC 6749 §4.1.2).
  headers.append('Set-Cookie', hostCookie(LOGIN_COOKIE, '', 0));
  const pending = await openLoginCookie(request, config);
  // The state Access returned must be the one this browser's cookie was sealed with: a finished
  // sign-in from another browser (login CSRF) or a cookie past its time gets nowhere.
  if (!pending || pending.state !== state || pending.exp <= Date.now() / 1000) {
    throw new PageError('stale_link', 'connections state refused', { headers, startAgain: 'connections' });
  }
  const { verifier, nonce, returnTo } = pending;
  return { data: { verifier, nonce, ...(returnTo !== undefined ? { returnTo } : {}) }, headers };
}

/** The sign-in the login cookie holds, or undefined: none, or not sealed by this gateway for it. */
async function openLoginCookie(request: Request, config: Config): Promise<PendingLogin | undefined> {
  const value = readCookie(request, LOGIN_COOKIE);
  const text = value ? await openSealed(config.cookieSecret, LOGIN_INFO, LOGIN_AAD, value) : undefined;
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { state, verifier, nonce, exp, returnTo } = parsed as Partial<Record<keyof PendingLogin, unknown>>;
  if (typeof state !== 'string' || typeof verifier !== 'string' || typeof nonce !== 'string' || typeof exp !== 'number') return undefined;
  return { state, verifier, nonce, exp, ...(typeof returnTo === 'string' ? { returnTo } : {}) };
}

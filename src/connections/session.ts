/**
 * Signing in to /connections: the same Cloudflare Access login as an MCP client's, returning to
 * the same `/callback` (the one redirect URL the Access app knows), told apart by its `state`
 * prefix. What the callback needs (state, PKCE verifier, nonce, expiry) travels in a sealed
 * (AES-256-GCM) `__Host-` cookie rather than in KV, so an anonymous visit costs no KV write: a
 * script cannot spend the plan's daily writes that everyone's logins and refreshes need. The
 * cookie binds the sign-in to the browser and lasts LOGIN_SECONDS, counted from the sealed time.
 * The session that follows is a signed `__Host-` cookie of its own, good for SESSION_SECONDS,
 * never an MCP access token.
 */
import * as oauth from 'oauth4webapi';
import { admits } from '../access/allowlist';
import { verifyAccessLogin } from '../access/callback';
import { type AccessLoginData, accessSignInUrl, newAccessLogin } from '../access/login';
import type { Config } from '../config';
import { PageError } from '../errors';
import type { Identity } from '../identity';
import { base64url, fromBase64url } from '../lib/base64url';
import { hmacKey, sign, verify } from '../lib/keys';
import { openSealed, sealText } from '../lib/seal';

export const CONNECTIONS_PATH = '/connections';
export const STATE_PREFIX = 'cx.';
export const SESSION_SECONDS = 30 * 60;
const LOGIN_SECONDS = 600;
const SESSION_COOKIE = '__Host-connections';
const LOGIN_COOKIE = '__Host-connections-login';
const SESSION_INFO = 'mcp-oauth-gateway connections session v1';
const CSRF_INFO = 'mcp-oauth-gateway connections csrf v1';
const LOGIN_INFO = 'mcp-oauth-gateway connections login v1';
const LOGIN_AAD = new TextEncoder().encode(LOGIN_COOKIE);

/** What the login cookie seals: one Access sign-in, until `exp` (seconds). */
interface PendingLogin extends AccessLoginData {
  state: string;
  exp: number;
}

export interface Session {
  email: string;
  admin: boolean;
  /** The form field every POST must carry: tied to this session, unreadable by other sites. */
  csrf: string;
}

/** Whether this `/callback` is the end of a /connections sign-in. */
export function isConnectionsState(url: URL): boolean {
  return url.searchParams.get('state')?.startsWith(STATE_PREFIX) ?? false;
}

/** Sends the browser to Access to sign in to /connections. Writes nothing to KV. */
export async function startConnectionsLogin(config: Config, origin: string): Promise<Response> {
  const state = `${STATE_PREFIX}${oauth.generateRandomState()}`;
  const data = newAccessLogin();
  const pending: PendingLogin = { ...data, state, exp: Math.floor(Date.now() / 1000) + LOGIN_SECONDS };
  const sealed = await sealText(config.cookieSecret, LOGIN_INFO, LOGIN_AAD, JSON.stringify(pending));
  const url = await accessSignInUrl(config.access, origin, state, data);
  const headers = new Headers({ Location: url.href, 'Cache-Control': 'no-store' });
  headers.append('Set-Cookie', cookie(LOGIN_COOKIE, sealed, LOGIN_SECONDS));
  return new Response(null, { status: 302, headers });
}

/** GET /callback with a /connections state: verifies the sign-in and starts the session. */
export async function finishConnectionsLogin(request: Request, config: Config): Promise<Response> {
  const url = new URL(request.url);
  const headers = new Headers({ 'Cache-Control': 'no-store' });
  // Single use without storage: every answer from here clears the login cookie, and a copy kept
  // past that is still one use only, since Access's code is single-use itself (RFC 6749 §4.1.2).
  headers.append('Set-Cookie', cookie(LOGIN_COOKIE, '', 0));
  const stale = new PageError(
    400,
    'This sign-in link no longer works',
    `It has expired, was already used, or was opened in a different browser from the one that started signing in. Open ${CONNECTIONS_PATH} again.`,
    'connections state refused',
    { headers },
  );
  const pending = await openLoginCookie(request, config);
  // The state Access returned must be the one this browser's cookie was sealed with: a finished
  // sign-in from another browser (login CSRF) or a cookie past its time gets nowhere.
  if (!pending || pending.state !== url.searchParams.get('state') || pending.exp <= Date.now() / 1000) throw stale;
  if (url.searchParams.has('error')) {
    throw new PageError(
      403,
      'Sign-in was declined',
      'The sign-in was cancelled, or Cloudflare Access did not let this account in.',
      `access returned error=${url.searchParams.get('error')}`,
      { headers },
    );
  }

  const identity: Identity = await verifyAccessLogin(config.access, url, pending, headers);
  if (!admits(config.allowedEmails, identity.email)) {
    throw new PageError(403, 'Not allowed', `${identity.email} is not allowed to use this gateway.`, 'connections login refused: not_allowed', { headers });
  }
  const payload = base64url(new TextEncoder().encode(JSON.stringify({ email: identity.email, exp: Math.floor(Date.now() / 1000) + SESSION_SECONDS })));
  const value = `${payload}.${await sign(await hmacKey(config.cookieSecret, SESSION_INFO), payload)}`;
  headers.append('Set-Cookie', cookie(SESSION_COOKIE, value, SESSION_SECONDS));
  headers.set('Location', CONNECTIONS_PATH);
  return new Response(null, { status: 303, headers });
}

/** The signed-in person, or undefined: no cookie, a forged or expired one, or someone no longer allowed. */
export async function readSession(request: Request, config: Config): Promise<Session | undefined> {
  const value = readCookie(request, SESSION_COOKIE);
  const [payload, signature, ...rest] = value?.split('.') ?? [];
  if (!value || !payload || !signature || rest.length > 0) return undefined;
  if (!(await verify(await hmacKey(config.cookieSecret, SESSION_INFO), payload, signature))) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(new TextDecoder().decode(fromBase64url(payload)));
  } catch {
    return undefined;
  }
  if (typeof claims !== 'object' || claims === null) return undefined;
  const { email, exp } = claims as { email?: unknown; exp?: unknown };
  if (typeof email !== 'string' || typeof exp !== 'number' || exp <= Date.now() / 1000) return undefined;
  // Removal from ALLOWED_EMAILS ends a session at its next request, not when it expires.
  if (!admits(config.allowedEmails, email)) return undefined;
  const csrf = await sign(await hmacKey(config.cookieSecret, CSRF_INFO), value);
  return { email, admin: config.adminEmails !== undefined && admits(config.adminEmails, email), csrf };
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
  const { state, verifier, nonce, exp } = parsed as Partial<Record<keyof PendingLogin, unknown>>;
  if (typeof state !== 'string' || typeof verifier !== 'string' || typeof nonce !== 'string' || typeof exp !== 'number') return undefined;
  return { state, verifier, nonce, exp };
}

/** The Set-Cookie that ends the session. */
export function signOutCookie(): string {
  return cookie(SESSION_COOKIE, '', 0);
}

function cookie(name: string, value: string, maxAge: number): string {
  return `${name}=${value}; Max-Age=${maxAge}; Path=/; Secure; HttpOnly; SameSite=Lax`;
}

function readCookie(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get('Cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

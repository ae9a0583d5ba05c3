/**
 * Signing in to /connections: the same Cloudflare Access login as an MCP client's, returning to
 * the same `/callback` (the one redirect URL the Access app knows) as a `connections` login state
 * (src/sign-in/: a sealed `__Host-` cookie, no KV write). The session that follows is a signed
 * `__Host-` cookie of its own, good for SESSION_SECONDS, never an MCP access token.
 */
import { emit } from '../audit';
import type { Config } from '../config';
import type { Identity } from '../identity';
import { base64url, fromBase64url, hmacKey, hostCookie, readCookie, sign, verify } from '../lib';
import { PageError } from '../pages';
import { isAdmin, mayUseGateway } from '../permissions';
import { type FinishedLogin, verifyAccessLogin } from '../sign-in';

export const CONNECTIONS_PATH = '/connections';
/** The admin's audit trail (audit-handler.ts); here so a sign-in started there can return to it. */
export const AUDIT_PATH = `${CONNECTIONS_PATH}/audit`;
export const SESSION_SECONDS = 30 * 60;
const SESSION_COOKIE = '__Host-connections';
const SESSION_INFO = 'mcp-oauth-gateway connections session v1';
const CSRF_INFO = 'mcp-oauth-gateway connections csrf v1';

export interface Session {
  email: string;
  /** The IdP groups Access sent at this sign-in; undefined for a session from before issue #19. */
  groups: string[] | undefined;
  admin: boolean;
  /** The form field every POST must carry: tied to this session, unreadable by other sites. */
  csrf: string;
}

/** Where a finished sign-in goes: only /connections or its audit page, whatever the state said (no open redirect). */
function returnPath(returnTo: string | undefined): string {
  return returnTo === AUDIT_PATH ? AUDIT_PATH : CONNECTIONS_PATH;
}

/** GET /callback with a /connections login state: verifies the sign-in and starts the session. */
export async function finishConnectionsLogin(request: Request, config: Config, login: FinishedLogin<'connections'>): Promise<Response> {
  const url = new URL(request.url);
  const headers = login.headers;
  if (url.searchParams.has('error')) {
    throw new PageError('sign_in_declined', `access returned error=${url.searchParams.get('error')}`, { headers, startAgain: 'connections' });
  }

  const identity: Identity = await verifyAccessLogin(config.access, url, login.data, headers, 'connections');
  if (!mayUseGateway(config, identity)) {
    throw new PageError('not_allowed', 'connections login refused: not_allowed', { headers, email: identity.email, server: 'this gateway' });
  }
  const claims = { email: identity.email, groups: sessionGroups(config, identity.groups ?? []), exp: Math.floor(Date.now() / 1000) + SESSION_SECONDS };
  const payload = base64url(new TextEncoder().encode(JSON.stringify(claims)));
  const value = `${payload}.${await sign(await hmacKey(config.cookieSecret, SESSION_INFO), payload)}`;
  headers.append('Set-Cookie', hostCookie(SESSION_COOKIE, value, SESSION_SECONDS));
  headers.set('Location', returnPath(login.data.returnTo));
  emit({ event: 'sign_in', actor: identity.email, purpose: 'connections' });
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
  const { email, groups, exp } = claims as { email?: unknown; groups?: unknown; exp?: unknown };
  if (typeof email !== 'string' || typeof exp !== 'number' || exp <= Date.now() / 1000) return undefined;
  // Signed by this gateway, so an array is one it wrote: of strings.
  const person = { email, ...(Array.isArray(groups) ? { groups: groups as string[] } : {}) };
  // Removal from ALLOWED_EMAILS ends a session at its next request, not when it expires.
  if (!mayUseGateway(config, person)) return undefined;
  const csrf = await sign(await hmacKey(config.cookieSecret, CSRF_INFO), value);
  return { email, groups: person.groups, admin: isAdmin(config, person), csrf };
}

/** About half of a browser's 4 KB cookie: the rest is the email, signature and attributes. */
const GROUPS_BUDGET = 1800;

/**
 * The groups the session cookie keeps: all of them when they fit, else those the configuration's
 * lists name (all its decisions need), so a person in hundreds of groups still gets a session.
 */
function sessionGroups(config: Config, groups: string[]): string[] {
  if (JSON.stringify(groups).length <= GROUPS_BUDGET) return groups;
  const named = new Set(
    [config.allowedEmails, config.adminEmails, ...config.upstreams.map((u) => u.allowedEmails)].flatMap((list) => [...(list?.groups ?? [])]),
  );
  return groups.filter((group) => named.has(group));
}

/** The Set-Cookie that ends the session. */
export function signOutCookie(): string {
  return hostCookie(SESSION_COOKIE, '', 0);
}

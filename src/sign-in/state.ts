/**
 * The one login-state store: every sign-in step that leaves the gateway and comes back (to Access
 * and back at `/callback`, or to the token page and back at `/callback/token`) begins with a
 * typed purpose and finishes only as that purpose, so a state of one kind never completes
 * another (an Access login's state cannot skip the token step, a /connections sign-in cannot
 * complete an MCP login). Two backends stand behind it:
 * - purposes tied to an MCP client's OAuth request keep the library's upstream transaction
 *   (`beginUpstream`/`finishUpstream`): it carries the AuthRequest, works once, is bound to this
 *   browser by a `__Host-` cookie, and is gone after ten minutes;
 * - `connections` keeps a sealed short-lived `__Host-` cookie (login-cookie.ts): no KV write for an
 *   anonymous visitor.
 */
import { AuthorizationError, type AuthRequest } from '@cloudflare/workers-oauth-provider';
import type { BrowserLeg } from '../context';
import type { Identity } from '../identity';
import { PageError } from '../pages';
import type { AccessLoginData, ConnectionsLoginData } from './access-url';
import { beginCookieLogin, finishCookieLogin, isCookieState } from './login-cookie';

export type LoginPurpose = 'mcp-login' | 'own-token' | 'connections' | 'upstream-oauth';

/** One upstream of an aggregate's own-token step: asked for in turn, each skippable. */
export interface OwnTokenTurn {
  upstream: string;
  replacing: boolean;
}

/** What each purpose keeps until it finishes. */
export interface LoginData {
  /** An MCP client's login, on its way through Access. */
  'mcp-login': AccessLoginData;
  /** After Access, the step where a person pastes their own upstream token. */
  /**
   * `accessRefreshToken` rides along, sealed in the library's transaction like the rest, so the
   * grant the step ends in is re-validated at refresh as any other (issue #19).
   */
  'own-token': {
    identity: Identity;
    /** Whether the token asked for now replaces a saved one its upstream refused. */
    replacing: boolean;
    accessRefreshToken?: string;
    /** For an aggregate's login, the upstream asked for now; absent: the login's own upstream. */
    upstream?: string;
    /** For an aggregate's login, the upstreams still to ask for after this one, in order (issue #21). */
    then?: OwnTokenTurn[];
  };
  /** A sign-in to /connections, and which of its pages to return to. */
  connections: ConnectionsLoginData;
  /** Room for an upstream's own OAuth leg; nothing begins it yet. */
  'upstream-oauth': never;
}

/** Purposes kept in a sealed cookie; the rest ride on the MCP client's OAuth request. */
type CookiePurpose = 'connections';

/** What the store works with: the library's helpers and this deployment's secrets. */
export type LoginStore = Pick<BrowserLeg, 'helpers' | 'config'>;

/** What a purpose tied to an OAuth request is begun with: that request, and headers to add the binding cookie to. */
export interface LoginTie {
  request: AuthRequest;
  headers?: Headers | undefined;
}

export type FinishedLogin<P extends LoginPurpose = LoginPurpose> = {
  [K in P]: {
    purpose: K;
    data: LoginData[K];
    /** The MCP client's request this step belongs to; none for /connections. */
    request: K extends CookiePurpose ? undefined : AuthRequest;
    /** Clear the binding cookie: send them on every answer from here on. */
    headers: Headers;
  };
}[P];

/** What a step's log reason calls it, after the purpose it was expected to be. */
const LABELS: Record<Exclude<LoginPurpose, CookiePurpose>, { refused: string; foreign: string }> = {
  'mcp-login': { refused: 'state', foreign: 'callback with a foreign state' },
  'own-token': { refused: 'token step', foreign: 'token step with a foreign state' },
  'upstream-oauth': { refused: 'upstream state', foreign: 'upstream callback with a foreign state' },
};

/** Starts a step of this purpose: the `state` to send, and the headers that bind it to this browser. */
export async function beginLogin<P extends LoginPurpose>(
  store: LoginStore,
  purpose: P,
  data: LoginData[P],
  ...[tie]: P extends CookiePurpose ? [] : [LoginTie]
): Promise<{ state: string; headers: Headers }> {
  if (purpose === 'connections') return beginCookieLogin(store.config, data as ConnectionsLoginData);
  if (!tie) throw new TypeError(`a ${purpose} step needs the OAuth request it belongs to`);
  return store.helpers.beginUpstream(tie.request, { data: { purpose, ...data }, ...(tie.headers ? { headers: tie.headers } : {}) });
}

/**
 * Finishes the step `state` names (default: the request URL's `state`), once, as one of the
 * `expected` purposes; a refused, used, expired, foreign-browser or foreign-purpose state is a
 * `stale_link` page.
 */
export async function finishLogin<P extends LoginPurpose>(
  store: LoginStore,
  request: Request,
  expected: readonly P[],
  state?: string,
): Promise<FinishedLogin<P>> {
  const url = new URL(request.url);
  const given = state ?? url.searchParams.get('state') ?? '';
  const accepts = (purpose: LoginPurpose): purpose is P => (expected as readonly LoginPurpose[]).includes(purpose);
  const transactional = expected.find((p): p is P & keyof typeof LABELS => p in LABELS);
  const label = LABELS[transactional ?? 'mcp-login'];
  const stale = (reason: string, cause?: unknown) =>
    new PageError('stale_link', reason, { ...(cause === undefined ? {} : { cause }), startAgain: transactional ? 'app' : 'connections' });

  if (isCookieState(given)) {
    if (!accepts('connections')) throw stale(label.foreign);
    const { data, headers } = await finishCookieLogin(request, store.config, given);
    return { purpose: 'connections', data, request: undefined, headers } as FinishedLogin<P>;
  }
  if (state !== undefined && state === '') throw stale(`${label.refused} without state`);

  let resumed: Awaited<ReturnType<typeof store.helpers.finishUpstream<Record<string, unknown>>>>;
  try {
    // finishUpstream reads `state` from the URL; the cookies that bind it come with the request.
    const withState =
      state === undefined ? request : new Request(`${url.origin}${url.pathname}?state=${encodeURIComponent(state)}`, { headers: request.headers });
    resumed = await store.helpers.finishUpstream<Record<string, unknown>>(withState);
  } catch (error) {
    if (!(error instanceof AuthorizationError)) throw error;
    throw stale(`${label.refused} refused: ${error.code}: ${error.description}`, error);
  }
  const purpose = purposeOf(resumed.data);
  if (!accepts(purpose) || !isWellFormed(purpose, resumed.data)) throw stale(label.foreign);
  return { purpose, data: resumed.data, request: resumed.request, headers: resumed.headers } as FinishedLogin<P>;
}

/** Transactions begun before purposes were stored (ten minutes at most) said `kind: 'own-token'`, or nothing for an Access login. */
function purposeOf(data: Record<string, unknown> | undefined): LoginPurpose {
  if (typeof data?.purpose === 'string') return data.purpose as LoginPurpose;
  return data?.kind === 'own-token' ? 'own-token' : 'mcp-login';
}

function isWellFormed(purpose: LoginPurpose, data: Record<string, unknown> | undefined): boolean {
  if (purpose === 'own-token') return typeof (data?.identity as Identity | undefined)?.email === 'string';
  return true;
}

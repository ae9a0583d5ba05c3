/**
 * The login's extra step on a `userSupplied` upstream: after Access, a person with no usable token
 * pastes theirs; it is checked with the upstream, stored encrypted, and only then does the MCP
 * client get its code. The step is an `own-token` login state (src/sign-in/): single-use, bound to
 * this browser by a `__Host-` cookie, and gone with the login after ten minutes.
 */
import type { AuthRequest } from '@cloudflare/workers-oauth-provider';
import { emit } from '../audit';
import { serverName, type UpstreamConfig } from '../config';
import type { BrowserLeg } from '../context';
import { isCrossSitePost } from '../lib';
import { renderTokenPage, vetPastedToken } from '../own-token';
import { PageError } from '../pages';
import { beginLogin, finishLogin, type LoginData, type LoginStore } from '../sign-in';
import { probeUpstream as checkUpstreamToken, takesOwnTokens, upstreamTokenFor } from '../upstreams';
import { TokenVault } from '../vault';
import { allowedUpstream, issueCode } from './complete';

export const TOKEN_STEP_PATH = '/callback/token';

/**
 * Why this person must paste a token now: '' when they have none at all, a message when their
 * saved one is refused; undefined when they can go on (a saved token that works, or a configured
 * fallback). An upstream that cannot be reached does not block the login: the token may be fine.
 */
export async function ownTokenProblem(upstream: UpstreamConfig, email: string, vault: TokenVault, ctx: ExecutionContext): Promise<string | undefined> {
  const stored = await vault.read(email, upstream.name);
  if (!stored) return upstreamTokenFor(upstream, email) === undefined ? '' : undefined;
  const check = await checkUpstreamToken(upstream, stored.token, ctx);
  return check === 'refused' ? `Your saved token was refused by ${serverName(upstream)}. Paste a new one.` : undefined;
}

/** The token page, tied to a fresh single-use, browser-bound step. */
export async function offerTokenStep(
  store: LoginStore,
  request: AuthRequest,
  step: LoginData['own-token'],
  upstream: UpstreamConfig,
  headers: Headers,
  problem = '',
  status = 200,
): Promise<Response> {
  const started = await beginLogin(store, 'own-token', step, { request, headers });
  return renderTokenPage({
    server: serverName(upstream),
    action: TOKEN_STEP_PATH,
    fields: { state: started.state },
    tokenHelp: upstream.tokenHelp,
    ...(problem ? { problem } : {}),
    submit: 'Save and continue',
    headers: started.headers,
    status,
  });
}

/** POST /callback/token: the person pasted their token. */
export async function handleTokenStep(request: Request, leg: BrowserLeg): Promise<Response> {
  const { helpers, gateway, config, env, ctx } = leg;
  const origin = new URL(request.url).origin;
  if (request.method !== 'POST') {
    throw new PageError('method_not_allowed', `${request.method} ${TOKEN_STEP_PATH}`, { headers: new Headers({ Allow: 'POST' }) });
  }
  if (isCrossSitePost(request, origin)) {
    throw new PageError('cross_site', `token step posted from ${request.headers.get('Origin')}`);
  }
  const form = await request.formData().catch(() => undefined);
  const state = form?.get('state');
  const resumed = await finishLogin(leg, request, ['own-token'], typeof state === 'string' ? state : '');
  const step = resumed.data;
  const { identity } = step;
  const headers = resumed.headers;
  const upstream = allowedUpstream(gateway, config, resumed.request, identity, headers);
  if (!takesOwnTokens(upstream)) {
    throw new PageError('stale_link', `token step for ${upstream.name}, which takes no own tokens`, { headers });
  }

  const vetted = await vetPastedToken(upstream, serverName(upstream), form?.get('token'), ctx);
  if ('problem' in vetted) return offerTokenStep(leg, resumed.request, step, upstream, headers, vetted.problem, vetted.status);
  const { token } = vetted;

  await new TokenVault(env.OAUTH_KV, config.tokenKeys).save(identity.email, upstream.name, token);
  const event = step.replacing ? 'own_token_replaced' : 'own_token_saved';
  emit({ event, actor: identity.email, subject: identity.email, upstream: upstream.name, via: 'login' });
  return issueCode(helpers, resumed.request, identity, upstream, headers, step.accessRefreshToken);
}

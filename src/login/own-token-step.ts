/**
 * The login's extra step on a `userSupplied` upstream: after Access, a person with no usable token
 * pastes theirs; it is checked with the upstream, stored encrypted, and only then does the MCP
 * client get its code. The step is an `own-token` login state (src/sign-in/): single-use, bound to
 * this browser by a `__Host-` cookie, and gone with the login after ten minutes. An aggregate's
 * login asks for each of its `userSupplied` upstreams in turn (issue #21), each skippable: the
 * state carries the ones still to ask for.
 */
import type { AuthRequest } from '@cloudflare/workers-oauth-provider';
import { emit } from '../audit';
import { type Config, type GatewayResource, resourceLabel, serverName, type UpstreamConfig } from '../config';
import type { BrowserLeg } from '../context';
import type { Identity } from '../identity';
import { isCrossSitePost } from '../lib';
import { renderTokenPage, vetPastedToken } from '../own-token';
import { PageError } from '../pages';
import { refusalFor } from '../permissions';
import { beginLogin, finishLogin, type LoginData, type LoginStore, type OwnTokenTurn } from '../sign-in';
import { probeUpstream as checkUpstreamToken, takesOwnTokens, upstreamTokenFor } from '../upstreams';
import { TokenVault } from '../vault';
import { allowedResource, issueCode } from './complete';

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
  return check === 'refused' ? savedTokenRefused(upstream) : undefined;
}

const savedTokenRefused = (upstream: UpstreamConfig) => `Your saved token was refused by ${serverName(upstream)}. Paste a new one.`;

/**
 * The upstreams of this login's resource this person must paste a token for now, in the
 * configured order: its `userSupplied` upstreams they may use, without a usable token. Each is
 * checked at once, so one slow upstream costs one timeout, not one per upstream.
 */
export async function tokenTurns(config: Config, resource: GatewayResource, identity: Identity, env: Env, ctx: ExecutionContext): Promise<OwnTokenTurn[]> {
  const asked = resource.upstreams.filter((upstream) => takesOwnTokens(upstream) && refusalFor(config, upstream, identity) === undefined);
  if (asked.length === 0) return [];
  const vault = new TokenVault(env.OAUTH_KV, config.tokenKeys);
  const problems = await Promise.all(asked.map((upstream) => ownTokenProblem(upstream, identity.email, vault, ctx)));
  return asked.flatMap((upstream, i) => (problems[i] === undefined ? [] : [{ upstream: upstream.name, replacing: problems[i] !== '' }]));
}

/** The first of `turns`' token page; the state carries the others. */
export function offerTokenTurns(
  store: LoginStore,
  request: AuthRequest,
  base: Pick<LoginData['own-token'], 'identity' | 'accessRefreshToken'>,
  resource: GatewayResource,
  [turn, ...then]: readonly [OwnTokenTurn, ...OwnTokenTurn[]],
  headers: Headers,
): Promise<Response> {
  const upstream = turnUpstream(resource, turn.upstream, headers);
  const step: LoginData['own-token'] = {
    ...base,
    replacing: turn.replacing,
    ...(resource.kind === 'aggregate' ? { upstream: upstream.name, then } : {}),
  };
  return offerTokenStep(store, request, step, resource, upstream, headers, turn.replacing ? savedTokenRefused(upstream) : '');
}

/** The token page, tied to a fresh single-use, browser-bound step. */
async function offerTokenStep(
  store: LoginStore,
  request: AuthRequest,
  step: LoginData['own-token'],
  resource: GatewayResource,
  upstream: UpstreamConfig,
  headers: Headers,
  problem = '',
  status = 200,
): Promise<Response> {
  const started = await beginLogin(store, 'own-token', step, { request, headers });
  const server = serverName(upstream);
  const aggregate = resource.kind === 'aggregate' ? (resourceLabel(resource) ?? resource.name) : undefined;
  return renderTokenPage({
    server,
    action: TOKEN_STEP_PATH,
    fields: { state: started.state },
    tokenHelp: upstream.tokenHelp,
    ...(problem ? { problem } : {}),
    submit: 'Save and continue',
    // In an aggregate, a missing token only leaves that upstream's tools out: the person may go on without it.
    ...(aggregate
      ? {
          context: `${aggregate} reaches ${server} with a token of your own.`,
          skip: 'Skip for now: add it later on /connections',
        }
      : {}),
    headers: started.headers,
    status,
  });
}

/** POST /callback/token: the person pasted their token, or skipped this upstream of an aggregate. */
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
  const resource = allowedResource(gateway, config, resumed.request, identity, headers);
  const name = step.upstream ?? (resource.kind === 'upstream' ? resource.name : '');
  const upstream = turnUpstream(resource, name, headers);
  if (refusalFor(config, upstream, identity) !== undefined) {
    throw new PageError('not_allowed', `token step for ${upstream.name}, which refuses ${identity.email}`, {
      headers,
      email: identity.email,
      server: serverName(upstream),
    });
  }

  // Only an aggregate's step can be skipped: a direct upstream is useless without the token.
  const skipped = resource.kind === 'aggregate' && form?.get('skip') === '1';
  if (!skipped) {
    const vetted = await vetPastedToken(upstream, serverName(upstream), form?.get('token'), ctx);
    if ('problem' in vetted) return offerTokenStep(leg, resumed.request, step, resource, upstream, headers, vetted.problem, vetted.status);
    await new TokenVault(env.OAUTH_KV, config.tokenKeys).save(identity.email, upstream.name, vetted.token);
    const event = step.replacing ? 'own_token_replaced' : 'own_token_saved';
    emit({ event, actor: identity.email, subject: identity.email, upstream: upstream.name, via: 'login' });
  }

  const [next, ...then] = step.then ?? [];
  if (next) return offerTokenTurns(leg, resumed.request, step, resource, [next, ...then], headers);
  return issueCode(helpers, resumed.request, identity, resource, headers, step.accessRefreshToken);
}

/** The upstream of `resource` a turn names, if it still takes own tokens; a stale link otherwise (the configuration changed during the login). */
function turnUpstream(resource: GatewayResource, name: string, headers: Headers): UpstreamConfig {
  const upstream = resource.upstreams.find((u) => u.name === name);
  if (!upstream || !takesOwnTokens(upstream)) {
    throw new PageError('stale_link', `token step for ${name.slice(0, 40)} in ${resource.name}, which takes no own tokens there`, { headers });
  }
  return upstream;
}

/**
 * The login's extra step on a `userSupplied` upstream: after Access, a person with no usable token
 * pastes theirs; it is checked with the upstream, stored encrypted, and only then does the MCP
 * client get its code. The step is a library upstream transaction (`beginUpstream` /
 * `finishUpstream`): single-use, bound to this browser by a `__Host-` cookie, and gone with the
 * login after ten minutes.
 */
import { AuthorizationError, type AuthRequest, type OAuthHelpers } from '@cloudflare/workers-oauth-provider';
import { allowedUpstream, issueCode } from '../access/complete';
import { type UpstreamConfig, upstreamLabel } from '../config';
import type { BrowserLeg } from '../context';
import { PageError } from '../errors';
import type { Identity } from '../identity';
import { isCrossSitePost } from '../lib/origin';
import { checkUpstreamToken } from '../upstream/check';
import { upstreamTokenFor } from '../upstream/credentials';
import { TokenVault } from '../vault/store';
import { renderTokenPage } from './page';
import { vetPastedToken } from './vet';

export const TOKEN_STEP_PATH = '/callback/token';
const START_AGAIN = 'Go back to your app and connect again.';

/** What the step keeps until the token is posted. `kind` tells it apart from an Access login's state. */
interface TokenStepData {
  kind: 'own-token';
  identity: Identity;
}

export const serverName = (upstream: UpstreamConfig) => upstreamLabel(upstream) ?? 'this MCP server';

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
  helpers: OAuthHelpers,
  request: AuthRequest,
  identity: Identity,
  upstream: UpstreamConfig,
  headers: Headers,
  problem = '',
  status = 200,
): Promise<Response> {
  const step = await helpers.beginUpstream(request, { data: { kind: 'own-token', identity } satisfies TokenStepData, headers });
  return renderTokenPage({
    server: serverName(upstream),
    action: TOKEN_STEP_PATH,
    fields: { state: step.state },
    tokenHelp: upstream.tokenHelp,
    ...(problem ? { problem } : {}),
    submit: 'Save and continue',
    headers: step.headers,
    status,
  });
}

/** POST /callback/token: the person pasted their token. */
export async function handleTokenStep(request: Request, { helpers, gateway, config, env, ctx }: BrowserLeg): Promise<Response> {
  const origin = new URL(request.url).origin;
  if (request.method !== 'POST') {
    throw new PageError(405, 'Method not allowed', START_AGAIN, `${request.method} ${TOKEN_STEP_PATH}`, { headers: new Headers({ Allow: 'POST' }) });
  }
  if (isCrossSitePost(request, origin)) {
    throw new PageError(
      403,
      'Request refused',
      `This form can only be sent from this site. ${START_AGAIN}`,
      `token step posted from ${request.headers.get('Origin')}`,
    );
  }
  const form = await request.formData().catch(() => undefined);
  const state = form?.get('state');
  const resumed = await resumeStep(helpers, request, origin, typeof state === 'string' ? state : '');
  const { identity } = resumed.data;
  const headers = resumed.headers;
  const upstream = allowedUpstream(gateway, config, resumed.request, identity, headers);
  if (!upstream.userSupplied) {
    throw new PageError(400, 'This page no longer works', START_AGAIN, `token step for ${upstream.name}, which takes no own tokens`, { headers });
  }

  const vetted = await vetPastedToken(upstream, serverName(upstream), form?.get('token'), ctx);
  if ('problem' in vetted) return offerTokenStep(helpers, resumed.request, identity, upstream, headers, vetted.problem, vetted.status);
  const { token } = vetted;

  await new TokenVault(env.OAUTH_KV, config.tokenKeys).save(identity.email, upstream.name, token);
  console.log(JSON.stringify({ event: 'own_token_saved', email: identity.email, upstream: upstream.name, via: 'login' }));
  return issueCode(helpers, resumed.request, identity, headers);
}

async function resumeStep(helpers: OAuthHelpers, request: Request, origin: string, state: string) {
  const fail = (reason: string, cause?: unknown) =>
    new PageError(
      400,
      'This page no longer works',
      `It has expired, was already used, or was opened in a different browser from the one that started signing in. ${START_AGAIN}`,
      reason,
      cause === undefined ? {} : { cause },
    );
  if (state === '') throw fail('token step without state');
  let resumed: Awaited<ReturnType<typeof helpers.finishUpstream<TokenStepData>>>;
  try {
    // finishUpstream reads `state` from the URL; the cookies that bind it come with the request.
    resumed = await helpers.finishUpstream<TokenStepData>(
      new Request(`${origin}${TOKEN_STEP_PATH}?state=${encodeURIComponent(state)}`, { headers: request.headers }),
    );
  } catch (error) {
    if (!(error instanceof AuthorizationError)) throw error;
    throw fail(`token step refused: ${error.code}: ${error.description}`, error);
  }
  // An Access login's state is a transaction of the same kind: it must not skip the sign-in.
  if (resumed.data?.kind !== 'own-token' || typeof resumed.data.identity?.email !== 'string') throw fail('token step with a foreign state');
  return resumed;
}

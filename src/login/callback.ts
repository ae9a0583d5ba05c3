import type { BrowserLeg } from '../context';
import { PageError } from '../pages';
import { type FinishedLogin, verifyAccessSignIn } from '../sign-in';
import { takesOwnTokens } from '../upstreams';
import { TokenVault } from '../vault';
import { allowedUpstream, issueCode } from './complete';
import { offerTokenStep, ownTokenProblem } from './own-token-step';

/**
 * GET /callback for an MCP login: the login-state store resumed the approved request (state is
 * single-use and bound to this browser); this verifies who signed in, and issues our
 * authorization code to the MCP client, or first asks for the person's own token on a
 * `userSupplied` upstream. On any failure nothing is written: the grant is created last.
 */
export async function finishMcpLogin(
  request: Request,
  { helpers, gateway, config, env, ctx }: BrowserLeg,
  login: FinishedLogin<'mcp-login'>,
): Promise<Response> {
  // These headers clear the browser-binding cookie: send them on every answer from here on.
  const headers = login.headers;
  const url = new URL(request.url);

  const accessError = url.searchParams.get('error');
  if (accessError !== null) {
    throw new PageError(accessError === 'access_denied' ? 'sign_in_declined' : 'sign_in_failed', `access returned error=${accessError}`, { headers });
  }

  const { identity, refreshToken } = await verifyAccessSignIn(config.access, url, login.data, headers);
  const upstream = allowedUpstream(gateway, config, login.request, identity, headers);
  if (takesOwnTokens(upstream)) {
    const vault = new TokenVault(env.OAUTH_KV, config.tokenKeys);
    const problem = await ownTokenProblem(upstream, identity.email, vault, ctx);
    if (problem !== undefined) {
      const step = { identity, replacing: problem !== '', ...(refreshToken ? { accessRefreshToken: refreshToken } : {}) };
      return offerTokenStep({ helpers, config }, login.request, step, upstream, headers, problem);
    }
  }
  return issueCode(helpers, login.request, identity, upstream, headers, refreshToken);
}

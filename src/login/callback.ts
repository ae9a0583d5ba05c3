import type { BrowserLeg } from '../context';
import { PageError } from '../pages';
import { type FinishedLogin, verifyAccessSignIn } from '../sign-in';
import { allowedResource, issueCode } from './complete';
import { offerTokenTurns, tokenTurns } from './own-token-step';

/**
 * GET /callback for an MCP login: the login-state store resumed the approved request (state is
 * single-use and bound to this browser); this verifies who signed in, and issues our
 * authorization code to the MCP client, or first asks for the person's own token on a
 * `userSupplied` upstream (on an aggregate, each one in turn). On any failure nothing is written: the grant is created last.
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
  const resource = allowedResource(gateway, config, login.request, identity, headers);
  const [turn, ...then] = await tokenTurns(config, resource, identity, env, ctx);
  if (turn) {
    const base = { identity, ...(refreshToken ? { accessRefreshToken: refreshToken } : {}) };
    return offerTokenTurns({ helpers, config }, login.request, base, resource, [turn, ...then], headers);
  }
  return issueCode(helpers, login.request, identity, resource, headers, refreshToken);
}

import type { AuthRequest, OAuthHelpers } from '@cloudflare/workers-oauth-provider';
import { emit } from '../audit';
import { type Config, type GatewayResource, resourceLabel } from '../config';
import type { OriginGateway } from '../context';
import type { Identity } from '../identity';
import { PageError } from '../pages';
import { refusalForAny, stampSignIn } from '../permissions';
import type { GrantProps } from '../sign-in';

/**
 * The upstream or aggregate this login is for, once this person may use it (an aggregate: any of
 * its upstreams); a readable 403 otherwise. The request was validated against this origin's
 * resources, so an unknown one means the configuration changed during the login: refuse rather
 * than guess.
 */
export function allowedResource(gateway: OriginGateway, config: Config, request: AuthRequest, identity: Identity, headers: Headers): GatewayResource {
  const resource = gateway.resourceFor(request.resource);
  const refusal = resource ? refusalForAny(config, resource.upstreams, identity) : 'not_allowed';
  if (!resource || refusal) {
    const label = resource && resourceLabel(resource);
    const reason = `login refused: ${refusal}${resource ? ` for ${resource.name}` : ''}`;
    if (refusal === 'not_allowed') throw new PageError('not_allowed', reason, { headers, email: identity.email, server: label ?? 'this server' });
    throw new PageError('no_credential', reason, { headers, email: identity.email, server: label ?? 'the server behind this gateway' });
  }
  return resource;
}

/** The end of a login: the grant (with Access's refresh token, for re-validation at refresh), and the MCP client's authorization code. */
export async function issueCode(
  helpers: OAuthHelpers,
  request: AuthRequest,
  identity: Identity,
  upstream: Pick<GatewayResource, 'name'>,
  headers: Headers,
  accessRefreshToken?: string,
): Promise<Response> {
  // One registry read per login, so the proxy has the app's name for the audit trail with no read per request.
  const clientName = await clientNameOf(helpers, request.clientId);
  const signedIn: Identity = { ...identity, ...(clientName ? { clientName } : {}) };
  const props: GrantProps = { ...stampSignIn(signedIn), ...(accessRefreshToken ? { accessRefreshToken } : {}) };
  const { redirectTo } = await helpers.completeAuthorization({
    request,
    userId: identity.email,
    // Unencrypted, unlike props: what an admin's /connections shows as the person's groups at sign-in.
    metadata: identity.groups ? { groups: identity.groups } : {},
    scope: request.scope,
    // Right after Access let them in (or the ten-minute token step that follows): MAX_GRANT_AGE counts from here.
    props,
  });
  emit({
    event: 'sign_in',
    actor: identity.email,
    purpose: 'mcp-login',
    upstream: upstream.name,
    clientId: request.clientId,
    ...(clientName ? { trailOnly: { clientName } } : {}),
  });
  headers.set('Location', redirectTo);
  headers.set('Cache-Control', 'no-store');
  return new Response(null, { status: 302, headers });
}

/** The longest app name kept: names are the app's own choice, and only label a row. */
const MAX_CLIENT_NAME = 100;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
const CONTROL = /[\x00-\x1f\x7f]+/g;

/** The app's registered name on one line, capped; undefined when it has none or cannot be read (the login goes on). */
async function clientNameOf(helpers: OAuthHelpers, clientId: string): Promise<string | undefined> {
  const client = await helpers.lookupClient(clientId).catch(() => null);
  const name = client?.clientName?.replace(CONTROL, ' ').trim().slice(0, MAX_CLIENT_NAME);
  return name || undefined;
}

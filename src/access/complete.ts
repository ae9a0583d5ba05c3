import type { AuthRequest, OAuthHelpers } from '@cloudflare/workers-oauth-provider';
import { type Config, type UpstreamConfig, upstreamLabel } from '../config';
import type { OriginGateway } from '../context';
import { PageError } from '../errors';
import type { Identity } from '../identity';
import { refusalFor } from './allowlist';
import { stampSignIn } from './grant-age';

/**
 * The upstream this login is for, once this person may use it; a readable 403 otherwise. The
 * request was validated against this origin's resources, so an unknown one means the
 * configuration changed during the login: refuse rather than guess.
 */
export function allowedUpstream(gateway: OriginGateway, config: Config, request: AuthRequest, identity: Identity, headers: Headers): UpstreamConfig {
  const upstream = gateway.upstreamFor(request.resource);
  const refusal = upstream ? refusalFor(config, upstream, identity.email) : 'not_allowed';
  if (!upstream || refusal) {
    const server = (upstream && upstreamLabel(upstream)) ?? 'this server';
    throw new PageError(
      403,
      'Not allowed',
      refusal === 'not_allowed'
        ? `${identity.email} is not allowed to use ${server}. Ask whoever runs it to add you.`
        : `${identity.email} has no credential for ${server === 'this server' ? 'the server behind this gateway' : server}. Ask whoever runs it to add one.`,
      `login refused: ${refusal}${upstream ? ` for ${upstream.name}` : ''}`,
      { headers },
    );
  }
  return upstream;
}

/** The end of a login: the grant, and the MCP client's authorization code. */
export async function issueCode(helpers: OAuthHelpers, request: AuthRequest, identity: Identity, headers: Headers): Promise<Response> {
  const { redirectTo } = await helpers.completeAuthorization({
    request,
    userId: identity.email,
    metadata: {},
    scope: request.scope,
    // Right after Access let them in (or the ten-minute token step that follows): MAX_GRANT_AGE counts from here.
    props: stampSignIn(identity),
  });
  headers.set('Location', redirectTo);
  headers.set('Cache-Control', 'no-store');
  return new Response(null, { status: 302, headers });
}

/** The OAuth roles of one origin: the authorization server and one resource server per upstream and per aggregate. */
import { OAuthAuthorizationServer, OAuthResourceServer } from '@cloudflare/workers-oauth-provider';
import { aggregateHandler } from '../aggregate';
import { emit } from '../audit';
import { type Config, type GatewayResource, gatewayResources } from '../config';
import type { OriginGateway } from '../context';
import type { Identity } from '../identity';
import { mcpHandler } from '../mcp';
import { GRANTED_SCOPES } from '../permissions';
import { exchangeDecisions } from './refresh';
import { TokenCache } from './token-cache';

const tokenCaches = new WeakMap<Config, TokenCache<Identity>>();

/** One cache per configuration, i.e. per isolate in production, shared by all its origins. */
export function tokenCacheFor(config: Config): TokenCache<Identity> {
  let cache = tokenCaches.get(config);
  if (!cache) tokenCaches.set(config, (cache = new TokenCache<Identity>()));
  return cache;
}

export function buildGateway(origin: string, config: Config): OriginGateway {
  const byResource = new Map(gatewayResources(config).map((resource) => [`${origin}${resource.path}`, resource]));
  const resourceFor = (resource: string | undefined) => (resource === undefined ? undefined : byResource.get(resource));
  // `/mcp` is what single-upstream deployments always served, so clients that omit `resource`
  // keep landing there; with several named upstreams only, a client must say which it wants.
  const defaultUpstream = config.upstreams.length === 1 ? config.upstreams[0] : config.upstreams.find((u) => u.path === '/mcp');
  const defaultResource = defaultUpstream && `${origin}${defaultUpstream.path}`;
  const tokenCache = tokenCacheFor(config);

  const authorizationServer = new OAuthAuthorizationServer<Env>({
    issuer: origin,
    resources: [...byResource.keys()],
    ...(defaultResource ? { defaultResource, legacyGrantResource: defaultResource } : {}),
    authorizeEndpoint: '/authorize',
    tokenEndpoint: '/token',
    clientRegistrationEndpoint: '/register',
    scopesSupported: GRANTED_SCOPES,
    // claude.ai and Claude Code prefer client ID metadata documents over registering anew each time.
    clientIdMetadataDocumentEnabled: true,
    accessTokenTTL: config.accessTokenTtl,
    refreshTokenTTL: config.refreshTokenTtl,
    // A grant lives while its client keeps refreshing, up to MAX_GRANT_AGE since its Access sign-in
    // (the callback caps every exchange's lifetimes by it), so active connectors rarely sign in again.
    refreshTokenIdleTTL: config.refreshTokenTtl,
    tokenExchangeCallback: exchangeDecisions(config, resourceFor, tokenCache),
    onError({ code, description, status, internal }) {
      emit({ event: 'oauth_error', status, code, description, internal });
    },
  });

  const validateToken = (env: Env) => (resource: string, token: string) =>
    tokenCache.validate(resource, token, (r, t) => authorizationServer.validateToken<Identity>(r, t, env));
  const resourceServers = new Map(
    [...byResource].map(([url, resource]) => [
      resource.name,
      new OAuthResourceServer<Env, Identity>({
        resourceMetadata: { resource: url, authorization_servers: [origin], resource_name: resource.title ?? 'MCP OAuth gateway' },
        requiredScopes: GRANTED_SCOPES,
        validateToken,
        handler: handlerFor(config, resource),
      }),
    ]),
  );
  return { authorizationServer, resourceServers, resourceFor, defaultUpstream, validateToken, tokenCache };
}

/** An upstream's resource proxies to it; an aggregate's is the gateway's own MCP server over its upstreams. */
function handlerFor(config: Config, resource: GatewayResource) {
  return resource.kind === 'aggregate' ? aggregateHandler(config, resource.aggregate) : mcpHandler(config, resource.upstream);
}

import { OAuthAuthorizationServer, OAuthError, type OAuthHelpers, OAuthResourceServer } from '@cloudflare/workers-oauth-provider';
import { refusalFor } from './access/allowlist';
import { handleAccessCallback } from './access/callback';
import { grantTerms, nowInSeconds } from './access/grant-age';
import { type Config, upstreamLabel } from './config';
import { handleConnections } from './connections/handler';
import { CONNECTIONS_PATH, finishConnectionsLogin, isConnectionsState } from './connections/session';
import { GRANTED_SCOPES, handleAuthorize } from './consent/handler';
import type { BrowserLeg, OriginGateway } from './context';
import { PageError, renderInternalError, renderPageError } from './errors';
import type { Identity } from './identity';
import { html, htmlPage } from './lib/html';
import { mcpHandler } from './mcp';
import { handleTokenStep, TOKEN_STEP_PATH } from './own-token/login-step';
import { TokenCache } from './token-cache';
import { tokensNamedIn } from './token-request';

const tokenCaches = new WeakMap<Config, TokenCache<Identity>>();

/** One cache per configuration, i.e. per isolate in production, shared by all its origins. */
export function tokenCacheFor(config: Config): TokenCache<Identity> {
  let cache = tokenCaches.get(config);
  if (!cache) tokenCaches.set(config, (cache = new TokenCache<Identity>()));
  return cache;
}

export function buildGateway(origin: string, config: Config): OriginGateway {
  const byResource = new Map(config.upstreams.map((upstream) => [`${origin}${upstream.path}`, upstream]));
  const upstreamFor = (resource: string | undefined) => (resource === undefined ? undefined : byResource.get(resource));
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
    tokenExchangeCallback({ grantType, props, resource, userId, grantId }) {
      if (grantType !== 'authorization_code' && grantType !== 'refresh_token') return;
      const identity = props as Identity;
      const upstream = upstreamFor(resource);
      const refuse = (description: string, reason: string): never => {
        // invalid_grant makes the library revoke the grant and its tokens; /token forgets it again after.
        tokenCache.forgetGrant(userId, grantId);
        throw new OAuthError('invalid_grant', { description, internal: { category: 'token-exchange-callback', reason } });
      };
      if (grantType === 'refresh_token' && (!upstream || refusalFor(config, upstream, identity.email))) {
        refuse('this account is no longer allowed', 'not_allowed');
      }
      return grantTerms(identity, nowInSeconds(), config) ?? refuse('this sign-in has reached its maximum age: sign in again', 'max_grant_age');
    },
    onError({ code, description, status, internal }) {
      console.warn(JSON.stringify({ event: 'oauth_error', status, code, description, internal }));
    },
  });

  const validateToken = (env: Env) => (resource: string, token: string) =>
    tokenCache.validate(resource, token, (r, t) => authorizationServer.validateToken<Identity>(r, t, env));
  const resourceServers = new Map(
    [...byResource].map(([resource, upstream]) => [
      upstream.name,
      new OAuthResourceServer<Env, Identity>({
        resourceMetadata: { resource, authorization_servers: [origin], resource_name: upstream.title ?? 'MCP OAuth gateway' },
        requiredScopes: GRANTED_SCOPES,
        validateToken,
        handler: mcpHandler(config, upstream),
      }),
    ]),
  );
  return { authorizationServer, resourceServers, upstreamFor, defaultUpstream, validateToken, tokenCache };
}

/**
 * The authorization server's own endpoints. Any token endpoint request may revoke a grant (RFC
 * 7009 revocation, a refused refresh, a replayed code), so each one forgets every grant its form
 * names from the token cache, before and after the library handles it: the grant's tokens stop
 * in this isolate at once.
 */
export async function handleAuthorizationServerRequest(request: Request, env: Env, ctx: ExecutionContext, gateway: OriginGateway): Promise<Response> {
  const named = new URL(request.url).pathname === '/token' ? await tokensNamedIn(request) : [];
  const forget = () => {
    for (const token of named) gateway.tokenCache.forgetGrantOf(token);
  };
  forget();
  try {
    return await gateway.authorizationServer.fetch(request, env, ctx);
  } finally {
    forget();
  }
}

/** The library's helpers, with `revokeGrant` (also when it calls it itself) forgetting the grant's cached tokens. */
export function helpersFor(gateway: OriginGateway, env: Env): OAuthHelpers {
  const helpers = gateway.authorizationServer.getOAuthApi(env);
  const cache = gateway.tokenCache;
  const revokeGrant = async (grantId: string, userId: string): Promise<void> => {
    cache.forgetGrant(userId, grantId);
    try {
      await helpers.revokeGrant(grantId, userId);
    } finally {
      cache.forgetGrant(userId, grantId);
    }
  };
  // The receiver stays the proxy, so the library's own `this.revokeGrant` (a new grant replacing
  // the client's old one) comes through here too.
  return new Proxy(helpers, { get: (target, name, receiver) => (name === 'revokeGrant' ? revokeGrant : Reflect.get(target, name, receiver)) });
}

const MAX_ORIGINS = 16;
const gateways = new WeakMap<Config, Map<string, OriginGateway>>();

/** The memoized roles for an origin; a handful per deployment, bounded all the same. */
export function gatewayFor(origin: string, config: Config): OriginGateway {
  let byOrigin = gateways.get(config);
  if (!byOrigin) gateways.set(config, (byOrigin = new Map()));
  let gateway = byOrigin.get(origin);
  if (!gateway) {
    gateway = buildGateway(origin, config);
    if (byOrigin.size >= MAX_ORIGINS) byOrigin.delete(byOrigin.keys().next().value as string);
    byOrigin.set(origin, gateway);
  }
  return gateway;
}

/** The pages a person's browser visits: the login legs, /connections and the landing page. */
export async function handleBrowserRequest(
  request: Request,
  env: Env,
  ctx: ExecutionContext,
  gateway: OriginGateway,
  config: Config,
): Promise<Response | undefined> {
  const url = new URL(request.url);
  const leg = (): BrowserLeg => ({ helpers: helpersFor(gateway, env), gateway, config, env, ctx });
  try {
    switch (url.pathname) {
      case '/authorize':
        return await handleAuthorize(request, leg());
      case '/callback':
        if (request.method !== 'GET') return undefined;
        // The one redirect URL the Access app knows serves both sign-ins, told apart by state.
        if (isConnectionsState(url)) return await finishConnectionsLogin(request, config);
        return await handleAccessCallback(request, leg());
      case TOKEN_STEP_PATH:
        return await handleTokenStep(request, leg());
      case CONNECTIONS_PATH:
        return await handleConnections(request, leg());
      case '/':
        return request.method === 'GET' ? landingPage(url.origin, config) : undefined;
    }
    return undefined;
  } catch (error) {
    return error instanceof PageError ? renderPageError(error) : renderInternalError(error);
  }
}

/** Every connector URL, by title: never an upstream's own host. */
function landingPage(origin: string, config: Config): Response {
  const rows = config.upstreams.map((upstream) => html`<dt>${upstreamLabel(upstream) ?? 'MCP server'}</dt><dd><code>${origin}${upstream.path}</code></dd>`);
  return htmlPage(
    'MCP OAuth gateway',
    html`<h1>MCP OAuth gateway</h1><p>Add ${config.upstreams.length === 1 ? 'this URL' : 'one of these URLs'} as a custom connector in your MCP client:</p><dl>${rows}</dl>`,
  );
}

import { OAuthError, type OAuthHelpers, OAuthProvider } from '@cloudflare/workers-oauth-provider';
import { handleAccessCallback } from './access/callback';
import { refusalFor } from './access/allowlist';
import type { Config } from './config';
import { GRANTED_SCOPES, handleAuthorize } from './consent/handler';
import { PageError, renderInternalError, renderPageError } from './errors';
import type { Identity } from './identity';
import { html, htmlPage } from './lib/html';
import { mcpHandler } from './mcp';

export const MCP_PATH = '/mcp';

type BrowserEnv = { OAUTH_PROVIDER: OAuthHelpers };

/**
 * The authorization server and resource for one origin. Tokens are bound to `<origin>/mcp`
 * (RFC 8707), which workers-oauth-provider fixes at construction, so each origin the Worker is
 * reached on (workers.dev, a custom domain, a local port) gets its own provider.
 */
export function buildProvider(origin: string, config: Config): OAuthProvider<Env> {
  return new OAuthProvider<Env>({
    apiRoute: MCP_PATH,
    apiHandler: mcpHandler(config),
    defaultHandler: browserHandler(config),
    authorizeEndpoint: '/authorize',
    tokenEndpoint: '/token',
    clientRegistrationEndpoint: '/register',
    scopesSupported: GRANTED_SCOPES,
    requiredScopes: GRANTED_SCOPES,
    resourceMetadata: { resource: `${origin}${MCP_PATH}`, resource_name: 'MCP OAuth gateway' },
    // claude.ai and Claude Code prefer client ID metadata documents over registering anew each time.
    clientIdMetadataDocumentEnabled: true,
    accessTokenTTL: config.accessTokenTtl,
    refreshTokenTTL: config.refreshTokenTtl,
    // A grant lives while its client keeps refreshing, so active connectors never need a new login.
    refreshTokenIdleTTL: config.refreshTokenTtl,
    tokenExchangeCallback({ grantType, props }) {
      const identity = props as Identity;
      if (grantType === 'refresh_token' && refusalFor(config, identity.email)) {
        // invalid_grant makes the library revoke the grant and its tokens.
        throw new OAuthError('invalid_grant', { description: 'this account is no longer allowed' });
      }
    },
    onError({ code, description, status, internal }) {
      console.warn(JSON.stringify({ event: 'oauth_error', status, code, description, internal }));
    },
  });
}

const MAX_ORIGINS = 16;
const providers = new WeakMap<Config, Map<string, OAuthProvider<Env>>>();

/** The memoized provider for an origin; a handful per deployment, bounded all the same. */
export function providerFor(origin: string, config: Config): OAuthProvider<Env> {
  let byOrigin = providers.get(config);
  if (!byOrigin) providers.set(config, (byOrigin = new Map()));
  let provider = byOrigin.get(origin);
  if (!provider) {
    provider = buildProvider(origin, config);
    if (byOrigin.size >= MAX_ORIGINS) byOrigin.delete(byOrigin.keys().next().value as string);
    byOrigin.set(origin, provider);
  }
  return provider;
}

/** Everything outside /mcp that the library does not answer itself: the browser legs. */
function browserHandler(config: Config) {
  return {
    async fetch(request: Request, env: Env): Promise<Response> {
      const url = new URL(request.url);
      // The provider injects its helpers into the environment it passes to this handler.
      const helpers = (env as Env & BrowserEnv).OAUTH_PROVIDER;
      try {
        switch (url.pathname) {
          case '/authorize':
            return await handleAuthorize(request, helpers, config);
          case '/callback':
            if (request.method !== 'GET') break;
            return await handleAccessCallback(request, helpers, config);
          case '/':
            if (request.method !== 'GET') break;
            return landingPage(url.origin);
        }
        return Response.json({ error: 'not_found' }, { status: 404 });
      } catch (error) {
        return error instanceof PageError ? renderPageError(error) : renderInternalError(error);
      }
    },
  };
}

function landingPage(origin: string): Response {
  return htmlPage(
    'MCP OAuth gateway',
    html`<h1>MCP OAuth gateway</h1><p>Add this URL as a custom connector in your MCP client:</p><p><code>${origin}${MCP_PATH}</code></p>`,
  );
}

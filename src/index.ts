import { type Config, ConfigError, configFor } from './config';
import type { OriginGateway } from './context';
import { html, htmlPage } from './lib/html';
import { gatewayFor, handleAuthorizationServerRequest, handleBrowserRequest } from './provider';
import { purgeExpiredData } from './purge';

const PROTECTED_RESOURCE_ROOT = '/.well-known/oauth-protected-resource';
const reported = new WeakSet<ConfigError>();

export default {
  async fetch(request, env, ctx): Promise<Response> {
    const url = new URL(request.url);
    const config = configFor(env);
    if (url.pathname === '/health') return health(config);
    if (config instanceof ConfigError) return misconfigured(config);

    let gateway: OriginGateway;
    try {
      gateway = gatewayFor(url.origin, config);
    } catch {
      // The library accepts only https origins, or http on loopback (wrangler dev).
      return htmlPage('Use https', html`<h1>Use https</h1><p>This gateway must be reached over https.</p>`, { status: 421 });
    }

    const resourceServer = gateway.resourceServers.get(upstreamNameIn(url.pathname) ?? '');
    if (resourceServer) return resourceServer.fetch(request, env, ctx);
    if (url.pathname === PROTECTED_RESOURCE_ROOT) return rootResourceMetadata(request, env, ctx, gateway);

    const page = await handleBrowserRequest(request, env, ctx, gateway, config);
    if (page) return page;
    const response = await handleAuthorizationServerRequest(request, env, ctx, gateway);
    // The library's own 404 has no body; say what happened in the JSON the other endpoints use.
    return response.status === 404 && response.body === null ? Response.json({ error: 'not_found' }, { status: 404 }) : response;
  },

  /** The cron trigger (wrangler.jsonc): sweeps expired and orphaned grants and tokens from KV. */
  async scheduled(_controller, env, _ctx): Promise<void> {
    await purgeExpiredData(env);
  },
} satisfies ExportedHandler<Env>;

/**
 * The upstream a path belongs to: `/mcp…` is the single upstream, `/<name>/mcp…` a named one,
 * and so are their RFC 9728 metadata paths under `/.well-known/oauth-protected-resource`.
 */
function upstreamNameIn(pathname: string): string | undefined {
  const path = pathname.startsWith(`${PROTECTED_RESOURCE_ROOT}/`) ? pathname.slice(PROTECTED_RESOURCE_ROOT.length) : pathname;
  const [, first, second] = path.split('/', 3);
  if (first === 'mcp') return 'mcp';
  return second === 'mcp' ? first : undefined;
}

/**
 * RFC 9728 clients also try the root document, which the library does not serve: it describes
 * `/mcp`, or the one upstream there is. With several and no `/mcp`, no resource stands for the
 * origin, and clients use the path-specific document their 401 named.
 */
function rootResourceMetadata(request: Request, env: Env, ctx: ExecutionContext, gateway: OriginGateway): Promise<Response> | Response {
  const upstream = gateway.defaultUpstream;
  const server = upstream && gateway.resourceServers.get(upstream.name);
  if (!upstream || !server) return Response.json({ error: 'not_found' }, { status: 404 });
  const url = new URL(request.url);
  return server.fetch(new Request(`${url.origin}${PROTECTED_RESOURCE_ROOT}${upstream.path}`, request), env, ctx);
}

function health(config: Config | ConfigError): Response {
  const headers = { 'Cache-Control': 'no-store' };
  if (config instanceof ConfigError) {
    // Names only: a value could be a secret.
    return Response.json({ ok: false, problems: [...new Set(config.problems.map((p) => p.variable))] }, { status: 503, headers });
  }
  return Response.json({ ok: true }, { headers });
}

function misconfigured(error: ConfigError): Response {
  if (!reported.has(error)) {
    reported.add(error);
    console.error(JSON.stringify({ event: 'misconfigured', problems: error.problems }));
  }
  return htmlPage(
    'Gateway misconfigured',
    html`<h1>This gateway is misconfigured</h1><p>Its operator needs to fix its settings; the Worker's logs and <code>/health</code> say which.</p>`,
    { status: 500 },
  );
}

// A Durable Object class must be exported by the Worker's main module: the one exception to
// "index.ts exports only the Worker".
export { RateLimiter } from './policy/rate-limiter';

/**
 * The route table: every path the gateway serves, with its handler, in the order they are tried.
 * The first route that takes a request serves it; the authorization server takes the rest.
 */
import { auditDatabase, auditState } from './audit';
import { type Config, ConfigError } from './config';
import { AUDIT_PATH, CONNECTIONS_PATH, finishConnectionsLogin, handleAudit, handleConnections } from './connections';
import type { BrowserLeg, OriginGateway } from './context';
import { finishMcpLogin, handleAuthorize, handleTokenStep, TOKEN_STEP_PATH } from './login';
import { gatewayFor, handleAuthorizationServerRequest, helpersFor } from './oauth';
import { landingPage, misconfiguredPage, PageError, renderInternalError, renderPageError, useHttpsPage } from './pages';
import { CALLBACK_PATH, finishLogin } from './sign-in';
import { PROTECTED_RESOURCE_ROOT, upstreamNameFor } from './upstreams';

/** One request, with this deployment's view of its origin. */
interface Visit {
  request: Request;
  url: URL;
  env: Env;
  ctx: ExecutionContext;
  config: Config;
  gateway: OriginGateway;
}

type Route =
  /** Served before the configuration is checked: it reports on it. */
  | { path: string; early: true; serve(config: Config | ConfigError, env: Env): Promise<Response> | Response }
  | { path: string; early?: false; takes(visit: Visit): boolean; serve(visit: Visit): Promise<Response> | Response };

/** `takes` for one exact path, optionally one method only (other methods fall through to the authorization server's 404). */
const at =
  (path: string, method?: string) =>
  ({ url, request }: Visit): boolean =>
    url.pathname === path && (method === undefined || request.method === method);

export const ROUTES: readonly Route[] = [
  { path: '/health', early: true, serve: health },
  {
    path: '/mcp, /mcp/…, /<name>/mcp, /<name>/mcp/…, and /.well-known/oauth-protected-resource/ before each',
    takes: ({ url, gateway }) => resourceServerFor(url, gateway) !== undefined,
    serve: ({ url, gateway, request, env, ctx }) =>
      (resourceServerFor(url, gateway) as NonNullable<ReturnType<typeof resourceServerFor>>).fetch(request, env, ctx),
  },
  { path: PROTECTED_RESOURCE_ROOT, takes: at(PROTECTED_RESOURCE_ROOT), serve: rootResourceMetadata },
  { path: '/authorize', takes: at('/authorize'), serve: page(handleAuthorize) },
  { path: CALLBACK_PATH, takes: at(CALLBACK_PATH, 'GET'), serve: page(handleCallback) },
  { path: TOKEN_STEP_PATH, takes: at(TOKEN_STEP_PATH), serve: page(handleTokenStep) },
  { path: CONNECTIONS_PATH, takes: at(CONNECTIONS_PATH), serve: page(handleConnections) },
  { path: AUDIT_PATH, takes: at(AUDIT_PATH), serve: page(handleAudit) },
  { path: '/', takes: at('/', 'GET'), serve: page((request, { config }) => landingPage(new URL(request.url).origin, config)) },
  {
    path: '/token, /register, /.well-known/oauth-authorization-server, and every other path',
    takes: () => true,
    serve: authorizationServer,
  },
];

/** Serves one request through the table. */
export async function routeRequest(request: Request, env: Env, ctx: ExecutionContext, config: Config | ConfigError): Promise<Response> {
  const url = new URL(request.url);
  const early = ROUTES.find((route) => route.early && route.path === url.pathname);
  if (early?.early) return early.serve(config, env);
  if (config instanceof ConfigError) return misconfiguredPage(config);

  let gateway: OriginGateway;
  try {
    gateway = gatewayFor(url.origin, config);
  } catch {
    // The library accepts only https origins, or http on loopback (wrangler dev).
    return useHttpsPage();
  }
  const visit: Visit = { request, url, env, ctx, config, gateway };
  for (const route of ROUTES) {
    if (!route.early && route.takes(visit)) return route.serve(visit);
  }
  return authorizationServer(visit);
}

/**
 * The resource a path belongs to: `/mcp…` is the single upstream, `/<name>/mcp…` a named upstream
 * or an aggregate (one namespace), and so are their RFC 9728 metadata paths under
 * `/.well-known/oauth-protected-resource`.
 */
function resourceServerFor(url: URL, gateway: OriginGateway) {
  return gateway.resourceServers.get(upstreamNameFor(url.pathname) ?? '');
}

/**
 * RFC 9728 clients also try the root document, which the library does not serve: it describes
 * `/mcp`, or the one upstream there is. With several and no `/mcp`, no resource stands for the
 * origin, and clients use the path-specific document their 401 named.
 */
function rootResourceMetadata({ request, url, env, ctx, gateway }: Visit): Promise<Response> | Response {
  const upstream = gateway.defaultUpstream;
  const server = upstream && gateway.resourceServers.get(upstream.name);
  if (!upstream || !server) return Response.json({ error: 'not_found' }, { status: 404 });
  return server.fetch(new Request(`${url.origin}${PROTECTED_RESOURCE_ROOT}${upstream.path}`, request), env, ctx);
}

/** `/token`, `/register`, the RFC 8414 metadata and anything unknown: the library's authorization server. */
async function authorizationServer({ request, env, ctx, gateway }: Visit): Promise<Response> {
  const response = await handleAuthorizationServerRequest(request, env, ctx, gateway);
  // The library's own 404 has no body; say what happened in the JSON the other endpoints use.
  return response.status === 404 && response.body === null ? Response.json({ error: 'not_found' }, { status: 404 }) : response;
}

/** GET /callback: the one redirect URL the Access app knows serves every sign-in, told apart by its login state's purpose. */
async function handleCallback(request: Request, leg: BrowserLeg): Promise<Response> {
  const login = await finishLogin(leg, request, ['mcp-login', 'connections']);
  return login.purpose === 'connections' ? finishConnectionsLogin(request, leg.config, login) : finishMcpLogin(request, leg, login);
}

/** A page a person's browser visits: its leg, and its failures rendered as pages. */
function page(handler: (request: Request, leg: BrowserLeg) => Promise<Response> | Response) {
  return async ({ request, env, ctx, config, gateway }: Visit): Promise<Response> => {
    try {
      return await handler(request, { helpers: helpersFor(gateway, env), gateway, config, env, ctx });
    } catch (error) {
      return error instanceof PageError ? renderPageError(error) : renderInternalError(error);
    }
  };
}

/**
 * `ok` is whether MCP requests can be served. `audit` is the trail's state (src/audit/schema.ts):
 * a database that is missing its tables or behind the code is named here but does not make `ok`
 * false, since it never fails an MCP request (it only loses those requests' trail rows).
 */
async function health(config: Config | ConfigError, env: Env): Promise<Response> {
  const headers = { 'Cache-Control': 'no-store' };
  if (config instanceof ConfigError) {
    // Names only: a value could be a secret.
    return Response.json({ ok: false, problems: [...new Set(config.problems.map((p) => p.variable))] }, { status: 503, headers });
  }
  return Response.json({ ok: true, audit: await auditState(auditDatabase(env)) }, { headers });
}

/**
 * An upstream's gateway path after authentication: a streaming, credential-swapping proxy to that
 * upstream. Its resource server has already checked the caller's token and audience, and the
 * allowlists; this swaps that token for the upstream credential and carries MCP traffic unchanged
 * in both directions.
 */
import type { Config, UpstreamConfig } from '../config';
import type { Identity } from '../identity';
import { toolRulesFor } from '../permissions';
import { upstreamCredential } from '../upstream/credentials';
import type { TokenVault } from '../vault/store';
import { forwardToUpstream } from './forward';
import { ALLOWED_METHODS, clientResponseHeaders, preflightResponse, upstreamRequestHeaders } from './headers';
import { type JsonRpcId, jsonRpcErrorResponse, type ProxyErrorKind } from './jsonrpc-error';
import { gatewayEndpointFor, rewriteEndpointEvents, upstreamUrlForSignedEndpoint } from './legacy-sse';
import { logProxyRequestAfterResponse, type ProxyLogEntry, type ProxyOutcome } from './log';
import { bodyForUpstream, readRequestBody, refusalOutcome } from './message';
import { gatewayPathFor, routeToUpstream } from './route';
import { scrubbedErrorBody } from './scrub';
import { bindSessionId, forwardSessionId } from './session-binding';
import { type ForwardedUnderPolicy, gateToolRequest, rateLimitResponse } from './tool-policy';

export interface ProxyCaller {
  config: Config;
  /** The upstream whose gateway path was requested. */
  upstream: UpstreamConfig;
  /** People's own tokens, for a `userSupplied` upstream. */
  vault?: TokenVault;
  identity: Identity;
  /** The OAuth client the token was issued to, for the log. */
  clientId: string;
}

const FORWARDED_METHODS = new Set(['GET', 'POST', 'DELETE']);
// Fetch forbids a body on these statuses.
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

/**
 * Proxies one authenticated MCP request (`<path>` or `<path>/<rest>`) to the upstream. Always resolves
 * to a response: the proxy's own failures are JSON-RPC errors (400, 403, 405, 502, 504).
 * `ctx` only keeps the log line (written after the response, see log.ts): a client disconnect
 * cancels the upstream fetch through `request.signal` and the runtime's cancellation of the
 * response stream.
 */
export async function proxyMcpRequest(request: Request, caller: ProxyCaller, ctx: ExecutionContext): Promise<Response> {
  const { config, upstream: settings, identity, clientId, vault } = caller;
  const url = new URL(request.url);
  const origin = request.headers.get('Origin');
  const entry: ProxyLogEntry = {
    upstream: settings.name,
    email: identity.email,
    clientId,
    method: request.method,
    path: url.pathname,
    rpcMethod: undefined,
    status: 0,
    upstreamStatus: undefined,
    latencyMs: undefined,
    outcome: 'ok',
  };
  const finish = (response: Response, outcome: ProxyOutcome): Response => {
    entry.status = response.status;
    entry.outcome = outcome;
    logProxyRequestAfterResponse(entry, ctx);
    return response;
  };
  const fail = (kind: ProxyErrorKind, outcome: ProxyOutcome, id: JsonRpcId = null, extra?: HeadersInit) =>
    finish(jsonRpcErrorResponse(kind, id, origin, extra, url.origin), outcome);

  if (request.method === 'OPTIONS') return finish(preflightResponse(origin), 'preflight');
  if (!FORWARDED_METHODS.has(request.method)) return fail('methodNotAllowed', 'method_not_allowed', null, { Allow: ALLOWED_METHODS });

  const route = routeToUpstream(url, settings.path, settings.url);
  const target =
    route.kind === 'mapped'
      ? route.target
      : route.kind === 'signed'
        ? await upstreamUrlForSignedEndpoint(route.token, route.search, settings, config, identity.email)
        : undefined;
  if (!target) return fail('pathRefused', 'path_refused');

  const toolRules = toolRulesFor(settings.tools, identity);
  // One read decides everything: what the policy, the limit and the log see is what goes upstream.
  const read = await readRequestBody(request, { inspect: toolRules !== undefined || settings.rateLimit !== undefined });
  const summary = read.kind === 'message' || read.kind === 'refused' ? read.summary : undefined;
  Object.assign(entry, { rpcMethod: summary?.methods, tool: summary?.tools, requests: summary?.batch ? summary.calls : undefined });
  const id = read.kind === 'refused' ? read.id : (summary?.id ?? null);
  if (read.kind === 'refused') return fail(read.error, refusalOutcome(read.error), id);
  const limited = await rateLimitResponse(settings, identity.email, Math.max(1, summary?.calls ?? 1), id, origin);
  if (limited) return finish(limited, 'rate_limited');
  const credential = await upstreamCredential(settings, identity.email, vault);
  if (!credential) return fail(settings.userSupplied ? 'noOwnToken' : 'noUpstreamCredential', 'no_upstream_credential', id);
  const upstreamHeaders = upstreamRequestHeaders(request.headers, settings, credential.header);
  if (!(await forwardSessionId(request.headers, upstreamHeaders, caller))) return fail('unknownSession', 'unknown_session', id);
  const body = bodyForUpstream(read, upstreamHeaders);

  // The tool policy (src/policy/): what may go upstream, and what of the answer the client sees.
  let gate: ForwardedUnderPolicy | undefined;
  if (toolRules) {
    const message = read.kind === 'message' ? read.message : undefined;
    const input = { rules: toolRules, method: request.method, message, hasBody: body !== null, id, origin };
    const decided = await gateToolRequest({ ...input, target, upstreamHeaders, signal: request.signal, timeoutMs: settings.timeoutMs });
    if (decided.kind === 'answer') return finish(decided.response, decided.outcome);
    gate = decided;
  }

  const started = Date.now();
  const result = await forwardToUpstream(target, {
    method: request.method,
    headers: upstreamHeaders,
    body: gate?.body ?? body,
    signal: request.signal,
    timeoutMs: settings.timeoutMs,
  });
  entry.latencyMs = Date.now() - started;
  if (result.outcome !== 'response') {
    // Nobody is left to read an answer to a closed client; 499 only labels the log line.
    if (result.outcome === 'client_closed') return finish(new Response(null, { status: 499 }), 'client_closed');
    return result.outcome === 'timeout' ? fail('upstreamTimeout', 'timeout', id) : fail('upstreamUnreachable', 'unreachable', id);
  }

  const upstream = result.response;
  entry.upstreamStatus = upstream.status;

  // The upstream refusing *our* credential is the gateway's fault, not the client's: a 401 with
  // WWW-Authenticate would send the client back through OAuth, which cannot fix it, in a loop.
  if (upstream.status === 401 || upstream.status === 403) {
    discard(upstream);
    return fail(credential.own ? 'upstreamRefusedOwnToken' : 'upstreamRefusedCredential', 'upstream_refused_credential', id);
  }

  const headers = clientResponseHeaders(upstream.headers, origin);
  await bindSessionId(headers, caller);
  const location = upstream.headers.get('Location');
  if (location !== null && upstream.status >= 300 && upstream.status < 400) {
    // Passed only when it leads back into the proxied path (e.g. a trailing-slash redirect), as
    // the gateway URL for it: the client never sees the upstream's host, and a redirect elsewhere
    // is refused rather than followed with the credential.
    const to = URL.canParse(location, target.href) ? new URL(location, target) : undefined;
    const path = to && gatewayPathFor(to, settings.path, settings.url);
    if (!path) {
      discard(upstream);
      return fail('upstreamBadResponse', 'upstream_redirect_refused', id);
    }
    headers.set('Location', path);
  }

  let responseBody = NULL_BODY_STATUSES.has(upstream.status) ? null : upstream.body;
  if (!upstream.ok) responseBody = await scrubbedErrorBody(responseBody, settings, credential);
  // Only a GET stream can be a legacy HTTP+SSE stream; POST answers pass untouched.
  if (responseBody && request.method === 'GET' && upstream.ok && isEventStream(headers)) {
    responseBody = rewriteEndpointEvents(responseBody, async (data) => {
      const endpoint = await gatewayEndpointFor(data, target, settings, config, identity.email);
      if (endpoint === undefined) {
        console.warn(JSON.stringify({ event: 'mcp_proxy_endpoint_refused', upstream: settings.name, email: identity.email, clientId, path: url.pathname }));
      }
      return endpoint;
    });
  }
  const response = new Response(responseBody, { status: upstream.status, statusText: upstream.statusText, headers });
  return gate ? finish(await gate.respond(response), gate.outcome) : finish(response, 'ok');
}

function isEventStream(headers: Headers): boolean {
  return /^text\/event-stream\s*(;|$)/i.test(headers.get('Content-Type') ?? '');
}

/** Releases an upstream body the client will not get. */
function discard(response: Response): void {
  response.body?.cancel().catch(() => {});
}

/**
 * An upstream's gateway path after authentication: a streaming, credential-swapping proxy to that
 * upstream. Its resource server has already checked the caller's token and audience, and the
 * allowlists; this swaps that token for the upstream credential and carries MCP traffic unchanged
 * in both directions.
 *
 * A short list of steps: checks before forwarding (route, read and judge the body, session, rate
 * limit, credential, tool policy), each answering the client itself or handing on what the next
 * needs; then the forward; then the mapping of upstream failures and the rewrites of the answer.
 */
import type { AuditArguments } from '../config';
import { toolRulesFor } from '../permissions';
import { forwardToUpstream, takesOwnTokens, upstreamCredential } from '../upstreams';
import { type Exchange, openExchange, type ProxyCaller } from './exchange';
import { ALLOWED_METHODS, preflightResponse, upstreamRequestHeaders } from './headers';
import type { JsonRpcId } from './jsonrpc-error';
import { upstreamUrlForSignedEndpoint } from './legacy-sse';
import { protocolRevisionOf } from './mcp-headers';
import { bodyForUpstream, type RequestBody, readRequestBody, refusalOutcome } from './message';
import { clientResponse } from './respond';
import { routeToUpstream } from './route';
import { clientSession, putSession } from './session-binding';
import { type ForwardedUnderPolicy, gateToolRequest, rateLimitResponse } from './tool-policy';

const FORWARDED_METHODS = new Set(['GET', 'POST', 'DELETE']);

/**
 * Proxies one authenticated MCP request (`<path>` or `<path>/<rest>`) to the upstream. Always resolves
 * to a response: the proxy's own failures are JSON-RPC errors (400, 403, 404, 405, 429, 502, 504).
 * `ctx` only keeps the log line (written after the response, see log.ts): a client disconnect
 * cancels the upstream fetch through `request.signal` and the runtime's cancellation of the
 * response stream.
 */
export async function proxyMcpRequest(request: Request, caller: ProxyCaller, ctx: ExecutionContext): Promise<Response> {
  const x = openExchange(request, caller, ctx);
  const { upstream: settings, identity } = caller;
  if (request.method === 'OPTIONS') return x.finish(preflightResponse(x.origin), 'preflight');
  if (!FORWARDED_METHODS.has(request.method)) return x.fail('methodNotAllowed', 'method_not_allowed', null, { Allow: ALLOWED_METHODS });

  // Checks before forwarding.
  const target = await targetFor(x);
  if (!target) return x.fail('pathRefused', 'path_refused');
  const toolRules = toolRulesFor(settings.tools, identity);
  const judged = await judgeBody(x, toolRules !== undefined || settings.rateLimit !== undefined, settings.audit.arguments);
  if (judged instanceof Response) return judged;
  const { read, id, calls } = judged;
  // The session before the limit: a handle that is not this person's uses no unit.
  const session = await clientSession(request.headers, caller);
  if (!session) return x.fail('unknownSession', 'unknown_session', id);
  const limited = await rateLimitResponse(settings, identity.email, calls, id, x.origin);
  if (limited) return x.finish(limited, 'rate_limited');
  const credential = await upstreamCredential(settings, identity.email, caller.vault);
  if (!credential) return x.fail(takesOwnTokens(settings) ? 'noOwnToken' : 'noUpstreamCredential', 'no_upstream_credential', id);
  const upstreamHeaders = upstreamRequestHeaders(request.headers, settings, credential.header);
  putSession(upstreamHeaders, session);
  const body = bodyForUpstream(read, upstreamHeaders);

  // The tool policy (src/policy/): what may go upstream, and what of the answer the client sees.
  let gate: ForwardedUnderPolicy | undefined;
  if (toolRules) {
    const message = read.kind === 'message' ? read.message : undefined;
    const input = { rules: toolRules, method: request.method, message, hasBody: body !== null, id, origin: x.origin };
    const decided = await gateToolRequest({ ...input, target, upstreamHeaders, signal: request.signal, timeoutMs: settings.timeoutMs });
    if (decided.kind === 'answer') return x.finish(decided.response, decided.outcome);
    gate = decided;
  }

  const upstream = await forward(x, target, upstreamHeaders, gate?.body ?? body, id);
  if ('answer' in upstream) return upstream.answer;

  // Rewrites after.
  return clientResponse(x, upstream.response, { target, credential, gate, id });
}

/** The upstream URL the gateway path leads to (a sealed legacy endpoint is opened); undefined: refused. */
async function targetFor(x: Exchange): Promise<URL | undefined> {
  const { upstream, config, identity } = x.caller;
  const route = routeToUpstream(x.url, upstream.path, upstream.url);
  if (route.kind === 'mapped') return route.target;
  if (route.kind === 'signed') return upstreamUrlForSignedEndpoint(route.token, route.search, upstream, config, identity.email);
  return undefined;
}

/**
 * One read decides everything: what the policy, the limit and the log see is what goes upstream.
 * The body, the id to echo and the number of requests it holds (at least one); or the refusal.
 */
async function judgeBody(
  x: Exchange,
  inspect: boolean,
  auditArguments: AuditArguments,
): Promise<Response | { read: RequestBody; id: JsonRpcId; calls: number }> {
  const read = await readRequestBody(x.request, { inspect, auditArguments });
  const summary = read.kind === 'message' || read.kind === 'refused' ? read.summary : undefined;
  Object.assign(x.entry, {
    rpcMethod: summary?.methods,
    tool: summary?.tools,
    resource: summary?.resources,
    prompt: summary?.prompts,
    requests: summary?.batch ? summary.calls : undefined,
  });
  if (summary?.arguments !== undefined) x.entry.trailOnly = { ...x.entry.trailOnly, arguments: summary.arguments };
  x.entry.protocolVersion = protocolRevisionOf(x.request.headers, read.kind === 'message' || read.kind === 'refused' ? read.message : undefined);
  const id = read.kind === 'refused' ? read.id : (summary?.id ?? null);
  if (read.kind === 'refused') return x.fail(read.error, refusalOutcome(read.error), id);
  return { read, id, calls: Math.max(1, summary?.calls ?? 1) };
}

/** The upstream's response; or, when none came, the client's answer. */
async function forward(
  x: Exchange,
  target: URL,
  headers: Headers,
  body: ReadableStream<Uint8Array> | ArrayBuffer | null,
  id: JsonRpcId,
): Promise<{ response: Response } | { answer: Response }> {
  const started = Date.now();
  const result = await forwardToUpstream(target, {
    method: x.request.method,
    headers,
    body,
    signal: x.request.signal,
    timeoutMs: x.caller.upstream.timeoutMs,
  });
  x.entry.latencyMs = Date.now() - started;
  if (result.outcome === 'response') {
    x.entry.upstreamStatus = result.response.status;
    return { response: result.response };
  }
  // Nobody is left to read an answer to a closed client; 499 only labels the log line.
  if (result.outcome === 'client_closed') return { answer: x.finish(new Response(null, { status: 499 }), 'client_closed') };
  return { answer: result.outcome === 'timeout' ? x.fail('upstreamTimeout', 'timeout', id) : x.fail('upstreamUnreachable', 'unreachable', id) };
}

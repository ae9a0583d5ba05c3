/**
 * What every step of the proxy reads (src/proxy/handler.ts, respond.ts): the caller, the request,
 * its log line, and how a step answers the client. A leaf: it imports nothing of the steps.
 */
import type { Config, UpstreamConfig } from '../config';
import type { Identity } from '../identity';
import type { TokenVault } from '../vault';
import { type JsonRpcId, jsonRpcErrorResponse, type ProxyErrorKind } from './jsonrpc-error';
import { logProxyRequestAfterResponse, type ProxyLogEntry, type ProxyOutcome } from './log';
import { protocolRevisionOf } from './mcp-headers';

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

/** One request on its way through the steps: what each step reads, and how any of them answers. */
export interface Exchange {
  request: Request;
  url: URL;
  /** The browser client's Origin header, for CORS. */
  origin: string | null;
  caller: ProxyCaller;
  entry: ProxyLogEntry;
  /** Ends the exchange with this response: the log line is written after it. */
  finish(response: Response, outcome: ProxyOutcome): Response;
  /** Ends the exchange with one of the proxy's JSON-RPC errors. */
  fail(kind: ProxyErrorKind, outcome: ProxyOutcome, id?: JsonRpcId, extra?: HeadersInit): Response;
}

/** The exchange for one request: its log entry starts empty and is written when it finishes. */
export function openExchange(request: Request, caller: ProxyCaller, ctx: ExecutionContext): Exchange {
  const url = new URL(request.url);
  const origin = request.headers.get('Origin');
  const entry: ProxyLogEntry = {
    upstream: caller.upstream.name,
    email: caller.identity.email,
    groups: caller.identity.groups,
    clientId: caller.clientId,
    method: request.method,
    path: url.pathname,
    rpcMethod: undefined,
    // The header's, until the body is read (handler.ts): a request refused before still names it.
    protocolVersion: protocolRevisionOf(request.headers),
    status: 0,
    upstreamStatus: undefined,
    latencyMs: undefined,
    outcome: 'ok',
    // The app's name came with the grant's props (src/login/complete.ts): no registry read here.
    ...(caller.identity.clientName ? { trailOnly: { clientName: caller.identity.clientName } } : {}),
  };
  const finish = (response: Response, outcome: ProxyOutcome): Response => {
    entry.status = response.status;
    entry.outcome = outcome;
    logProxyRequestAfterResponse(entry, ctx);
    return response;
  };
  const fail = (kind: ProxyErrorKind, outcome: ProxyOutcome, id: JsonRpcId = null, extra?: HeadersInit) =>
    finish(jsonRpcErrorResponse(kind, id, origin, extra, url.origin), outcome);
  return { request, url, origin, caller, entry, finish, fail };
}

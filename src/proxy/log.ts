/**
 * One JSON line per proxied request, written when the response headers are known (a stream's end
 * may be hours later). Never a token, a cookie, a query string (legacy session ids live there) or
 * a body: only what identifies who called what and how it went.
 */

export type ProxyOutcome =
  | 'ok'
  | 'preflight'
  | 'method_not_allowed'
  | 'path_refused'
  | 'no_upstream_credential'
  | 'upstream_refused_credential'
  | 'upstream_redirect_refused'
  | 'timeout'
  | 'unreachable'
  | 'client_closed'
  | 'tool_refused'
  | 'uninspectable'
  | 'rate_limited';

export interface ProxyLogEntry {
  /** The upstream's name (`mcp` for the single upstream at /mcp). */
  upstream: string;
  email: string;
  clientId: string;
  method: string;
  /** The gateway path, without the query. */
  path: string;
  rpcMethod: string | undefined;
  /** The tool a `tools/call` named (the first one, in a batch). */
  tool?: string | undefined;
  /** What the client got. */
  status: number;
  /** What the upstream answered, when it did. */
  upstreamStatus: number | undefined;
  /** Milliseconds until the upstream's response headers (or the failure). */
  latencyMs: number | undefined;
  outcome: ProxyOutcome;
}

export function logProxyRequest(entry: ProxyLogEntry): void {
  console.log(JSON.stringify({ event: 'mcp_proxy', time: new Date().toISOString(), ...entry }));
}

/**
 * One JSON line per proxied request, about the response as it was handed back (a stream's end may
 * be hours later). Never a token, a cookie, a query string (legacy session ids live there) or a
 * body: only what identifies who called what and how it went.
 *
 * Printing is the costly part, not building the line (issue #10: about 0.5 to 1 ms per
 * `console.log` under `wrangler dev`, a few microseconds for the JSON), so the line is printed
 * once the response is on its way, under `waitUntil`.
 */
import { emit } from '../audit';

export type ProxyOutcome =
  | 'ok'
  | 'preflight'
  | 'method_not_allowed'
  | 'path_refused'
  | 'unknown_session'
  | 'no_upstream_credential'
  | 'upstream_refused_credential'
  | 'upstream_redirect_refused'
  | 'timeout'
  | 'unreachable'
  | 'client_closed'
  | 'tool_refused'
  | 'uninspectable'
  | 'invalid_message'
  | 'rate_limited';

export interface ProxyLogEntry {
  /** The upstream's name (`mcp` for the single upstream at /mcp). */
  upstream: string;
  email: string;
  clientId: string;
  method: string;
  /** The gateway path, without the query. */
  path: string;
  /** Each distinct JSON-RPC method of the body, comma-separated; undefined when it was not read. */
  rpcMethod: string | undefined;
  /** Each distinct tool its `tools/call`s name, refused ones too (see `outcome`), comma-separated. */
  tool?: string | undefined;
  /** In a batch, the calls it held (what a rate limit charged). */
  requests?: number | undefined;
  /** What the client got. */
  status: number;
  /** What the upstream answered, when it did. */
  upstreamStatus: number | undefined;
  /** Milliseconds until the upstream's response headers (or the failure). */
  latencyMs: number | undefined;
  outcome: ProxyOutcome;
}

/** Prints the line now, with `at` (milliseconds since the epoch) as its time. */
export function logProxyRequest(entry: ProxyLogEntry, at: number = Date.now()): void {
  emit({ event: 'mcp_proxy', time: new Date(at).toISOString(), ...entry });
}

/**
 * Prints the line after the response has been handed to the runtime: a timer's turn comes after
 * the one that returns the response (a microtask would not: the response still climbs back
 * through the library's awaits), and `waitUntil` keeps the isolate until it is written.
 * The time is the response's, taken now.
 */
export function logProxyRequestAfterResponse(entry: ProxyLogEntry, ctx: Pick<ExecutionContext, 'waitUntil'>): void {
  const at = Date.now();
  ctx.waitUntil(nextTurn().then(() => logProxyRequest(entry, at)));
}

/** The runtime's own timer (`scheduler.wait`, which tests' fake timers leave alone), else setTimeout (Node, in bench/). */
function nextTurn(): Promise<void> {
  if (typeof scheduler !== 'undefined') return scheduler.wait(0);
  return new Promise((resolve) => setTimeout(resolve, 0));
}

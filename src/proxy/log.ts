/**
 * One JSON line per proxied request, about the response as it was handed back (a stream's end may
 * be hours later). Never a token, a cookie, a query string (legacy session ids live there) or a
 * body: only what identifies who called what and how it went.
 *
 * Printing is the costly part, not building the line (issue #10: about 0.5 to 1 ms per
 * `console.log` under `wrangler dev`, a few microseconds for the JSON), so the line is printed
 * once the response is on its way, under `waitUntil`.
 */
import { emit, type McpRequestFields } from '../audit';

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
  | 'resource_refused'
  | 'prompt_refused'
  | 'uninspectable'
  | 'invalid_message'
  | 'header_mismatch'
  | 'rate_limited';

/** The per-request line's fields (audit/events.ts documents each), with the proxy's own outcomes. */
export interface ProxyLogEntry extends McpRequestFields {
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

/**
 * Every event the gateway logs, as one closed union: a new kind is added here first, so the log's
 * vocabulary stays in one place (and a store for an audit trail has one type to keep). `actor` is
 * who did it, `subject` whose connection it was: the same person, or an admin acting on someone.
 * Never a token, cookie, query string or body.
 */

/**
 * Fields the audit trail stores but the console line never prints (src/audit/sink.ts drops them
 * before printing): Workers Logs are kept and read under other rules than the trail, so what a
 * person typed into a tool call, and text an app chose for itself, stay out of them.
 */
export interface TrailOnlyFields {
  /** The `tools/call` arguments as the upstream's `audit.arguments` keeps them: JSON text, capped. */
  arguments?: string | undefined;
  /** The app's name as its registration gave it at login (capped), carried in the grant's props. */
  clientName?: string | undefined;
}

/** The fields of the proxy's per-request line (src/proxy/log.ts narrows `outcome`). */
export interface McpRequestFields {
  /** The upstream's name (`mcp` for the single upstream at /mcp). */
  upstream: string;
  email: string;
  /** The person's IdP groups, when Access sent them. */
  groups?: string[] | undefined;
  clientId: string;
  method: string;
  /** The gateway path, without the query. */
  path: string;
  /** Each distinct JSON-RPC method of the body, comma-separated; undefined when it was not read. */
  rpcMethod: string | undefined;
  /** The MCP protocol revision the request names (`_meta`, `MCP-Protocol-Version`, or initialize's), `?` when not a date. */
  protocolVersion?: string | undefined;
  /** Each distinct tool its `tools/call`s name, refused ones too (see `outcome`), comma-separated. */
  tool?: string | undefined;
  /** Each distinct resource URI its `resources/read`, `resources/subscribe` and `resources/unsubscribe` name, likewise. */
  resource?: string | undefined;
  /** Each distinct prompt its `prompts/get`s name, likewise. */
  prompt?: string | undefined;
  /** In a batch, the calls it held (what a rate limit charged). */
  requests?: number | undefined;
  /** What the client got. */
  status: number;
  /** What the upstream answered, when it did. */
  upstreamStatus: number | undefined;
  /** Milliseconds until the upstream's response headers (or the failure). */
  latencyMs: number | undefined;
  outcome: string;
  /** Stored in the trail, never printed. */
  trailOnly?: TrailOnlyFields | undefined;
  /** Set when the request came through an aggregate (`AGGREGATES`): its name; `upstream` is then the upstream the call went to. */
  aggregate?: string | undefined;
}

export type AuditEvent =
  | ({ event: 'mcp_proxy'; time: string } & McpRequestFields)
  | { event: 'mcp_proxy_endpoint_refused'; upstream: string; email: string; clientId: string; path: string }
  | { event: 'rate_limiter_unavailable'; upstream: string; email: string; error: string }
  /** An aggregate's list answered without this upstream's tools: it was too slow, failed or refused the credential. */
  | { event: 'aggregate_upstream_left_out'; aggregate: string; upstream: string; email: string; reason: string }
  | { event: 'sign_in'; actor: string; purpose: 'mcp-login' | 'connections'; upstream?: string; clientId?: string; trailOnly?: TrailOnlyFields }
  | { event: 'consent_approved' | 'consent_denied'; clientId: string; upstream: string | undefined }
  | { event: 'own_token_saved' | 'own_token_replaced'; actor: string; subject: string; upstream: string; via: 'login' | 'connections' }
  | { event: 'own_token_deleted'; actor: string; subject: string; upstream: string }
  | { event: 'app_disconnected'; actor: string; subject: string; upstream: string; clientId: string }
  | { event: 'page_error'; reference: string; status: number; reason: string }
  | { event: 'internal_error'; reference: string; error: string }
  | { event: 'oauth_error'; status: number; code: string; description: string | undefined; internal: unknown }
  | { event: 'misconfigured'; problems: unknown }
  | { event: 'audit_write_failed'; lost: number; error: string }
  | { event: 'audit_pruned'; expired: number; overLimit: number }
  | { event: 'audit_prune_failed'; error: string }
  | { event: 'audit_read_failed'; error: string }
  | { event: 'purge'; grantsChecked: number; grantsPurged: number; tokensChecked: number; tokensPurged: number; done: boolean };

export type AuditEventName = AuditEvent['event'];

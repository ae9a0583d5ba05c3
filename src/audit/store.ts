/**
 * The audit trail's write side: the events a person or admin reads later (an MCP request, a
 * sign-in, a consent, an own token saved or deleted, an app disconnected) become rows of
 * `audit_events` (migrations/0001_audit.sql). Never a token, secret, header value or body: each
 * row is built field by field from the event, never by spreading it.
 *
 * Writes are queued by `emit()` and flushed after the response (`flushTrail` under `waitUntil`,
 * src/index.ts), as ONE statement however many events are waiting: an INSERT … SELECT over
 * `json_each(?)` of one JSON array. D1 allows 100 bound parameters per statement, so a
 * multi-row VALUES list would hold only 6 of our 16-column rows, and `db.batch` of one INSERT per
 * event costs a row of work per statement; one JSON parameter carries any number of rows in one
 * round trip. A failed write loses those events only (counted in the log as `audit_write_failed`),
 * never the request.
 */
import type { AuditEvent } from './events';
import type { AuditOutcome, AuditRow } from './query';

const COLUMNS: readonly (keyof AuditRow)[] = [
  'time',
  'kind',
  'email',
  'actor',
  'groups',
  'client_id',
  'client_name',
  'upstream',
  'rpc_method',
  'tool',
  'outcome',
  'status',
  'upstream_status',
  'duration_ms',
  'arguments',
];

const INSERT = `INSERT INTO audit_events (${COLUMNS.join(', ')}) SELECT ${COLUMNS.map((c) => `json_extract(value, '$.${c}')`).join(', ')} FROM json_each(?)`;

/** At most this many rows wait in an isolate; beyond it the oldest are dropped (and counted), so a dead database never grows memory. */
const MAX_PENDING = 1_000;

let pending: AuditRow[] = [];
let dropped = 0;

/** Queues the event's row when it is one the trail keeps; the console line is the sink's job. */
export function queueForTrail(event: AuditEvent, now: number = Date.now()): void {
  const row = rowOf(event, now);
  if (!row) return;
  if (pending.length >= MAX_PENDING) {
    pending.shift();
    dropped++;
  }
  pending.push(row);
}

/**
 * Writes every queued row in one statement. Runs a timer turn after the response, so the proxy's
 * line (itself written a turn after the response, src/proxy/log.ts) is in the same write. Never
 * throws: a failure is one `audit_write_failed` line with how many events it lost.
 */
export async function flushTrail(db: D1Database | undefined): Promise<void> {
  await nextTurn();
  await nextTurn();
  if (pending.length === 0 && dropped === 0) return;
  const rows = pending;
  const lostBefore = dropped;
  pending = [];
  dropped = 0;
  if (!db) return;
  if (lostBefore > 0) warn({ event: 'audit_write_failed', lost: lostBefore, error: 'queue full' });
  if (rows.length === 0) return;
  try {
    await db.prepare(INSERT).bind(JSON.stringify(rows)).run();
  } catch (error) {
    // The error's name and message only: D1's messages carry SQL, never our bound values.
    warn({ event: 'audit_write_failed', lost: rows.length, error: describe(error) });
  }
}

/** Drops what is queued (tests, and a deployment without AUDIT_DB). */
export function discardQueuedTrail(): void {
  pending = [];
  dropped = 0;
}

/** The row an event becomes, or undefined for the operational events the trail does not keep. */
export function rowOf(event: AuditEvent, now: number): AuditRow | undefined {
  const base = {
    time: now,
    kind: event.event,
    email: null,
    actor: null,
    groups: null,
    client_id: null,
    client_name: null,
    upstream: null,
    rpc_method: null,
    tool: null,
    outcome: 'ok' as AuditOutcome,
    status: null,
    upstream_status: null,
    duration_ms: null,
    arguments: null,
  } satisfies AuditRow;
  switch (event.event) {
    case 'mcp_proxy': {
      const outcome = outcomeOf(event.outcome, event.upstreamStatus);
      if (outcome === undefined) return undefined;
      const time = Date.parse(event.time);
      return {
        ...base,
        time: Number.isFinite(time) ? time : now,
        email: event.email,
        groups: event.groups ? JSON.stringify(event.groups) : null,
        client_id: event.clientId,
        client_name: event.trailOnly?.clientName ?? null,
        upstream: event.upstream,
        rpc_method: event.rpcMethod ?? null,
        tool: namedIn(event),
        outcome,
        status: event.status,
        upstream_status: event.upstreamStatus ?? null,
        duration_ms: event.latencyMs ?? null,
        arguments: event.trailOnly?.arguments ?? null,
      };
    }
    case 'mcp_proxy_endpoint_refused':
      return { ...base, email: event.email, client_id: event.clientId, upstream: event.upstream, outcome: 'not_allowed' };
    case 'sign_in':
      return {
        ...base,
        email: event.actor,
        actor: event.actor,
        client_id: event.clientId ?? null,
        client_name: event.trailOnly?.clientName ?? null,
        upstream: event.upstream ?? null,
      };
    case 'consent_approved':
    case 'consent_denied':
      // The consent page's events name no person (the login state carries the identity further on): the client only.
      return { ...base, client_id: event.clientId, upstream: event.upstream ?? null };
    case 'own_token_saved':
    case 'own_token_replaced':
    case 'own_token_deleted':
      return { ...base, email: event.subject, actor: event.actor, upstream: event.upstream };
    case 'app_disconnected':
      return { ...base, email: event.subject, actor: event.actor, upstream: event.upstream, client_id: event.clientId };
    default:
      return undefined;
  }
}

/** The `tool` column: the tools, then the resource URIs, then the prompts the request named (`rpc_method` says which). */
function namedIn(event: { tool?: string | undefined; resource?: string | undefined; prompt?: string | undefined }): string | null {
  const names = [event.tool, event.resource, event.prompt].filter((list): list is string => list !== undefined && list !== '');
  return names.length > 0 ? names.join(',') : null;
}

/**
 * The proxy's outcomes in the trail's vocabulary. A preflight is not a call and is not kept; an
 * upstream that answered 5xx is an upstream error even when the proxy passed it on as it came.
 */
export function outcomeOf(outcome: string, upstreamStatus: number | undefined): AuditOutcome | undefined {
  switch (outcome) {
    case 'preflight':
      return undefined;
    case 'ok':
      return upstreamStatus !== undefined && upstreamStatus >= 500 ? 'upstream_error' : 'ok';
    case 'timeout':
    case 'unreachable':
    case 'upstream_redirect_refused':
    case 'client_closed':
      return 'upstream_error';
    case 'tool_refused':
    case 'resource_refused':
    case 'prompt_refused':
      return 'refused_by_policy';
    case 'rate_limited':
      return 'rate_limited';
    case 'no_upstream_credential':
    case 'upstream_refused_credential':
      return 'auth_failed';
    default:
      // method_not_allowed, path_refused, unknown_session, uninspectable, invalid_message, header_mismatch
      return 'not_allowed';
  }
}

/** The sink's line for a lost write, printed here: the sink queues into this module, so it cannot be imported back. */
function warn(event: Extract<AuditEvent, { event: 'audit_write_failed' }>): void {
  console.warn(JSON.stringify(event));
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : 'unknown error';
}

/** The runtime's own timer (`scheduler.wait`, which fake timers leave alone), else setTimeout (Node, in bench/). */
function nextTurn(): Promise<void> {
  if (typeof scheduler !== 'undefined') return scheduler.wait(0);
  return new Promise((resolve) => setTimeout(resolve, 0));
}

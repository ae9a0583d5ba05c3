/**
 * The audit trail's read side (migrations/0001_audit.sql): one person's recent events, everyone's
 * events filtered, the filtered set streamed for an export, and calls per hour by outcome. Every
 * list is newest first with keyset pagination on (time, id): `before` is the last row's cursor,
 * never an OFFSET, so a page costs the same on the millionth row as on the first.
 */

/** The outcomes a stored event can have (the issue's vocabulary; src/audit/store.ts maps the proxy's). */
export type AuditOutcome = 'ok' | 'upstream_error' | 'refused_by_policy' | 'rate_limited' | 'not_allowed' | 'auth_failed';

/** One row as the INSERT reads it from the JSON array (column names, as in the migration). */
export interface AuditRow {
  time: number;
  kind: string;
  email: string | null;
  actor: string | null;
  groups: string | null;
  client_id: string | null;
  client_name: string | null;
  upstream: string | null;
  rpc_method: string | null;
  tool: string | null;
  outcome: AuditOutcome;
  status: number | null;
  upstream_status: number | null;
  duration_ms: number | null;
  arguments: string | null;
}

export const AUDIT_OUTCOMES: readonly AuditOutcome[] = ['ok', 'upstream_error', 'refused_by_policy', 'rate_limited', 'not_allowed', 'auth_failed'];

/** One stored row, as the pages read it. */
export interface StoredEvent {
  id: number;
  /** Milliseconds since the epoch (UTC). */
  time: number;
  kind: string;
  /** Whose trail it is on: the caller of an MCP request, the subject of a page event. */
  email: string | null;
  /** Who did it: the same person, or an admin acting on someone (page events only). */
  actor: string | null;
  groups: string[] | null;
  clientId: string | null;
  clientName: string | null;
  upstream: string | null;
  rpcMethod: string | null;
  /** The tool, resource URI or prompt name (rpcMethod says which), comma-separated for a batch. */
  tool: string | null;
  outcome: AuditOutcome;
  status: number | null;
  upstreamStatus: number | null;
  durationMs: number | null;
  /** Only with the upstream's `audit.arguments`: JSON text. */
  arguments: string | null;
}

/** Filters the admin page passes; every one optional, all of them combined with AND. Validate first. */
export interface AuditFilters {
  email?: string;
  group?: string;
  upstream?: string;
  clientId?: string;
  /** Matches one tool (or resource / prompt) name exactly, also inside a batch's comma-separated list. */
  tool?: string;
  outcome?: AuditOutcome;
  /** Inclusive lower bound, ms since the epoch. */
  from?: number;
  /** Exclusive upper bound, ms since the epoch. */
  to?: number;
}

/** Where a page ends: the next page starts strictly before it. */
export interface AuditCursor {
  time: number;
  id: number;
}

export interface PageOptions {
  before?: AuditCursor | undefined;
  /** 1..500. */
  limit: number;
}

export interface AuditPage {
  events: StoredEvent[];
  /** Present when there may be more: pass it as `before` for the next page. */
  next?: AuditCursor;
}

export interface HourCount {
  /** The hour's start, ms since the epoch. */
  hour: number;
  outcome: AuditOutcome;
  count: number;
}

const MAX_LIMIT = 500;
const STREAM_CHUNK = 500;
const HOUR_MS = 3_600_000;

const COLUMNS =
  'id, time, kind, email, actor, groups, client_id, client_name, upstream, rpc_method, tool, outcome, status, upstream_status, duration_ms, arguments';

/** One person's own events, newest first (the /connections activity list). */
export async function recentEventsFor(db: D1Database, email: string, page: PageOptions): Promise<AuditPage> {
  return searchEvents(db, { email }, page);
}

/** Everyone's events matching `filters`, newest first (the admin's /connections/audit). */
export async function searchEvents(db: D1Database, filters: AuditFilters, page: PageOptions): Promise<AuditPage> {
  const limit = Math.min(Math.max(1, Math.trunc(page.limit)), MAX_LIMIT);
  const { where, params } = buildWhere(filters, page.before);
  const result = await db
    .prepare(`SELECT ${COLUMNS} FROM audit_events ${where} ORDER BY time DESC, id DESC LIMIT ?`)
    .bind(...params, limit + 1)
    .all<Row>();
  const rows = result.results.slice(0, limit).map(toEvent);
  const last = rows.at(-1);
  return result.results.length > limit && last ? { events: rows, next: { time: last.time, id: last.id } } : { events: rows };
}

/** The whole filtered set, newest first, read in keyset chunks so an export never holds it all. */
export async function* streamEvents(db: D1Database, filters: AuditFilters): AsyncGenerator<StoredEvent> {
  let before: AuditCursor | undefined;
  for (;;) {
    const page = await searchEvents(db, filters, { before, limit: STREAM_CHUNK });
    yield* page.events;
    if (!page.next) return;
    before = page.next;
  }
}

/** Calls per hour by outcome over the filtered set (the chart), oldest hour first. */
export async function countsPerHour(db: D1Database, filters: AuditFilters): Promise<HourCount[]> {
  const { where, params } = buildWhere(filters, undefined);
  const result = await db
    .prepare(`SELECT (time / ${HOUR_MS}) * ${HOUR_MS} AS hour, outcome, COUNT(*) AS count FROM audit_events ${where} GROUP BY hour, outcome ORDER BY hour`)
    .bind(...params)
    .all<{ hour: number; outcome: AuditOutcome; count: number }>();
  return result.results.map((r) => ({ hour: r.hour, outcome: r.outcome, count: r.count }));
}

/** A stored row: what the INSERT writes (store.ts), and its id. */
interface Row extends AuditRow {
  id: number;
}

function buildWhere(filters: AuditFilters, before: AuditCursor | undefined): { where: string; params: unknown[] } {
  const clauses: string[] = [];
  const params: unknown[] = [];
  const equal = (column: string, value: string | undefined) => {
    if (value === undefined) return;
    clauses.push(`${column} = ?`);
    params.push(value);
  };
  equal('email', filters.email);
  equal('upstream', filters.upstream);
  equal('client_id', filters.clientId);
  equal('outcome', filters.outcome);
  if (filters.tool !== undefined) {
    // Exact match first (the index), then inside a batch's list.
    clauses.push("(tool = ? OR (',' || tool || ',') LIKE ? ESCAPE '\\')");
    params.push(filters.tool, `%,${filters.tool.replace(/[\\%_]/g, (c) => `\\${c}`)},%`);
  }
  if (filters.group !== undefined) {
    clauses.push('EXISTS (SELECT 1 FROM json_each(audit_events.groups) WHERE value = ?)');
    params.push(filters.group);
  }
  if (filters.from !== undefined) {
    clauses.push('time >= ?');
    params.push(filters.from);
  }
  if (filters.to !== undefined) {
    clauses.push('time < ?');
    params.push(filters.to);
  }
  if (before) {
    clauses.push('(time < ? OR (time = ? AND id < ?))');
    params.push(before.time, before.time, before.id);
  }
  return { where: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
}

function toEvent(row: Row): StoredEvent {
  return {
    id: row.id,
    time: row.time,
    kind: row.kind,
    email: row.email,
    actor: row.actor,
    groups: row.groups ? parseGroups(row.groups) : null,
    clientId: row.client_id,
    clientName: row.client_name,
    upstream: row.upstream,
    rpcMethod: row.rpc_method,
    tool: row.tool,
    outcome: row.outcome,
    status: row.status,
    upstreamStatus: row.upstream_status,
    durationMs: row.duration_ms,
    arguments: row.arguments,
  };
}

function parseGroups(text: string): string[] | null {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.filter((g): g is string => typeof g === 'string') : null;
  } catch {
    return null;
  }
}

/**
 * The filters of /connections/audit (and the paging of /connections), read from the query string
 * and validated: a bad value is a problem named on the page, never an exception.
 */
import { AUDIT_OUTCOMES, type AuditCursor, type AuditFilters, type AuditOutcome } from '../audit';

export interface ParsedFilters {
  filters: AuditFilters;
  /** Where this page starts: strictly older than this event (keyset paging, never OFFSET). */
  before: AuditCursor | undefined;
  /** What the form shows back: the values as typed. */
  typed: Record<FilterField, string>;
  problems: string[];
}

export const FILTER_FIELDS = ['person', 'group', 'upstream', 'app', 'tool', 'outcome', 'from', 'to'] as const;
export type FilterField = (typeof FILTER_FIELDS)[number];

const TEXT_FIELDS = { person: 'email', group: 'group', upstream: 'upstream', app: 'clientId', tool: 'tool' } as const;
const MAX_TEXT = 200;
// 2026-12-01, 2026-12-01T10:30 (a datetime-local field), with seconds, or a full ISO time with a zone.
const DATE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2})?)?$/;

/** Reads the filters and the `before` cursor; UTC where no zone is given. */
export function parseFilters(params: URLSearchParams): ParsedFilters {
  const problems: string[] = [];
  const filters: AuditFilters = {};
  const typed = Object.fromEntries(FILTER_FIELDS.map((field) => [field, (params.get(field) ?? '').trim()])) as Record<FilterField, string>;
  for (const [field, key] of Object.entries(TEXT_FIELDS) as [keyof typeof TEXT_FIELDS, (typeof TEXT_FIELDS)[keyof typeof TEXT_FIELDS]][]) {
    const value = typed[field];
    if (!value) continue;
    if (value.length > MAX_TEXT) problems.push(`"${field}" is longer than ${MAX_TEXT} characters`);
    else filters[key] = value;
  }
  if (typed.outcome) {
    if ((AUDIT_OUTCOMES as readonly string[]).includes(typed.outcome)) filters.outcome = typed.outcome as AuditOutcome;
    else problems.push(`"outcome" must be one of ${AUDIT_OUTCOMES.join(', ')}`);
  }
  for (const field of ['from', 'to'] as const) {
    const value = typed[field];
    if (!value) continue;
    const time = parseTime(value);
    if (time === undefined) problems.push(`"${field}" is not a date: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)`);
    else filters[field] = time;
  }
  if (filters.from !== undefined && filters.to !== undefined && filters.from >= filters.to) problems.push('"from" must be before "to"');
  const before = params.get('before');
  const cursor = before ? parseCursor(before) : undefined;
  if (before && !cursor) problems.push('"before" is not a page link this gateway made');
  return { filters, before: cursor, typed, problems };
}

function parseTime(value: string): number | undefined {
  if (!DATE.test(value)) return undefined;
  const [year, month, day] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
  // Date.parse rolls 2026-02-31 over to March 3rd: check the calendar first.
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  const iso = value.replace(' ', 'T');
  const time = Date.parse(iso.length > 10 && !/(Z|[+-]\d{2}:\d{2})$/.test(iso) ? `${iso}Z` : iso);
  return Number.isNaN(time) ? undefined : time;
}

/** `?before=<time>,<id>`, as `cursorParam` writes it. */
export function parseCursor(value: string): AuditCursor | undefined {
  const match = /^(\d{1,15}),(\d{1,15})$/.exec(value);
  if (!match) return undefined;
  return { time: Number(match[1]), id: Number(match[2]) };
}

export function cursorParam(cursor: AuditCursor): string {
  return `${cursor.time},${cursor.id}`;
}

/**
 * GET /connections/audit: everyone's audit trail, for admins only (ADMIN_EMAILS, people or
 * `group:` entries), filtered, paged by keyset, charted per hour, exported as CSV or JSON Lines.
 * Also the trail a person sees of themselves on /connections. A database that is missing, behind
 * or failing is said on the page; it never fails the page.
 */
import type { OAuthHelpers } from '@cloudflare/workers-oauth-provider';
import { type AuditFilters, type AuditPage, countsPerHour, emit, recentEventsFor, searchEvents, streamEvents } from '../audit';
import type { BrowserLeg } from '../context';
import { PageError } from '../pages';
import { redirectToAccess } from '../sign-in';
import { exportResponse } from './audit-export';
import { parseCursor, parseFilters } from './audit-filter';
import { type AuditPageOptions, renderAuditPage, type Trail } from './audit-page';
import { AUDIT_PATH, readSession } from './session';

const PAGE_SIZE = 100;
const HOUR = 3_600_000;
/** The chart's longest span: 31 days of hourly bars. */
const CHART_SPAN = 31 * 24 * HOUR;

export async function handleAudit(request: Request, leg: BrowserLeg): Promise<Response> {
  const url = new URL(request.url);
  if (request.method !== 'GET') {
    throw new PageError('method_not_allowed', `${request.method} ${url.pathname}`, { startAgain: 'connections', headers: new Headers({ Allow: 'GET' }) });
  }
  const session = await readSession(request, leg.config);
  if (!session) return redirectToAccess(leg, url.origin, 'connections', { returnTo: AUDIT_PATH });
  if (!session.admin) throw new PageError('admins_only', `audit trail asked for by ${session.email}, not an admin`);

  const parsed = parseFilters(url.searchParams);
  const db = auditDatabase(leg.env);
  const options: AuditPageOptions = { typed: parsed.typed, problems: parsed.problems, trail: { events: [] } };
  if (parsed.problems.length > 0) return renderAuditPage(options);
  if (!db) return renderAuditPage({ ...options, trail: { off: 'no_database' } });

  const format = url.searchParams.get('format');
  if (format === 'csv' || format === 'jsonl') return exportResponse(format, streamEvents(db, parsed.filters));
  if (format) return renderAuditPage({ ...options, problems: ['"format" must be csv or jsonl'] });

  try {
    const page = await withClientNames(leg.helpers, await searchEvents(db, parsed.filters, { before: parsed.before, limit: PAGE_SIZE }));
    return renderAuditPage({ ...options, trail: page, chart: await chartFor(db, parsed.filters) });
  } catch (error) {
    // A schema that is missing or behind: /health and the doctor name it; the page only says so.
    readFailed(error);
    return renderAuditPage({ ...options, trail: { off: 'unavailable' } });
  }
}

/** The signed-in person's own events for /connections (`?before=` pages back), or why there are none. */
export async function ownTrail(helpers: OAuthHelpers, env: Env, email: string, before: string | null): Promise<Trail> {
  const db = auditDatabase(env);
  if (!db) return { off: 'no_database' };
  try {
    return await withClientNames(helpers, await recentEventsFor(db, email, { before: before ? parseCursor(before) : undefined, limit: PAGE_SIZE }));
  } catch (error) {
    readFailed(error);
    return { off: 'unavailable' };
  }
}

/** The chart over the filters' range: by default the last 24 hours, at most the last 31 days. */
async function chartFor(db: D1Database, filters: AuditFilters): Promise<NonNullable<AuditPageOptions['chart']>> {
  const to = filters.to ?? Date.now();
  const wanted = filters.from ?? to - 24 * HOUR;
  const from = Math.max(wanted, to - CHART_SPAN);
  return { counts: await countsPerHour(db, { ...filters, from, to }), from, to, clipped: from > wanted };
}

/**
 * Names the apps of rows stored without one (the proxy knows only the client id) from the
 * client registry: one read per distinct client on the page. A client since deleted keeps its id.
 */
async function withClientNames(helpers: OAuthHelpers, page: AuditPage): Promise<AuditPage> {
  const ids = [...new Set(page.events.filter((e) => e.clientId && !e.clientName).map((e) => e.clientId as string))];
  if (ids.length === 0) return page;
  const names = new Map(await Promise.all(ids.map(async (id) => [id, (await helpers.lookupClient(id).catch(() => null))?.clientName] as const)));
  return { ...page, events: page.events.map((e) => (e.clientId && !e.clientName ? { ...e, clientName: names.get(e.clientId) ?? null } : e)) };
}

/** A read that failed: one `audit_read_failed` line; D1's messages carry SQL, never our bound values. */
function readFailed(error: unknown): void {
  emit({ event: 'audit_read_failed', error: error instanceof Error ? error.message.slice(0, 300) : 'non-error thrown' });
}

/** The binding is optional: a deployment without it runs with the trail off. */
function auditDatabase(env: Env): D1Database | undefined {
  return (env as { AUDIT_DB?: D1Database }).AUDIT_DB;
}

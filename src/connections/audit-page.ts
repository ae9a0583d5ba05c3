/**
 * The audit trail on the pages: a person's own recent activity on /connections, and the admin's
 * /connections/audit (filters, chart, table, export links). Every value goes through `html`.
 */
import type { AuditCursor, HourCount, StoredEvent } from '../audit';
import { html, htmlPage, type SafeHtml } from '../lib';
import { renderHourlyChart } from './audit-chart';
import { cursorParam, FILTER_FIELDS, type FilterField } from './audit-filter';
import { AUDIT_PATH, CONNECTIONS_PATH } from './session';

/** What the trail can say on a page: the events, or why there are none to show. */
export type Trail = { events: StoredEvent[]; next?: AuditCursor | undefined } | { off: 'no_database' | 'unavailable' };

const OFF_TEXT = {
  no_database: 'The audit trail is off on this gateway (no AUDIT_DB database is bound).',
  unavailable: 'The audit trail could not be read just now; the rest of this page is unaffected. Try again later.',
} as const;

/** The "Your recent activity" section of /connections. */
export function activitySection(trail: Trail): SafeHtml {
  if ('off' in trail) return html`<h2>Your recent activity</h2><p class="muted">${OFF_TEXT[trail.off]}</p>`;
  // The shell's column is narrow for a six-column table: this page widens it a little.
  return html`<style>body{max-width:48rem}</style><h2 id="activity">Your recent activity</h2>
${trail.events.length === 0 ? html`<p class="muted">No activity recorded.</p>` : eventsTable(trail.events, false)}
${trail.next && html`<p><a href="${CONNECTIONS_PATH}?before=${cursorParam(trail.next)}#activity">Older activity</a></p>`}`;
}

export interface AuditPageOptions {
  typed: Record<FilterField, string>;
  problems: string[];
  trail: Trail;
  /** The chart and the range it covers; absent when the filters were refused or the trail is off. */
  chart?: { counts: HourCount[]; from: number; to: number; clipped: boolean };
}

/** GET /connections/audit: everyone's events, for an admin. A refused filter is a 400 naming it. */
export function renderAuditPage(options: AuditPageOptions): Response {
  const { typed, problems, trail, chart } = options;
  const query = filterQuery(typed);
  const body = html`<style>body{max-width:64rem;margin-top:4vh}</style>
<h1>Audit trail</h1>
<p class="muted">Everyone's MCP calls and page actions through this gateway, newest first. Times are UTC. <a href="${CONNECTIONS_PATH}">Back to connections</a></p>
${filterForm(typed)}
${problems.length > 0 && html`<div class="warn" role="alert"><strong>Check the filters:</strong><ul>${problems.map((p) => html`<li>${p}</li>`)}</ul></div>`}
${'off' in trail && html`<p class="warn">${OFF_TEXT[trail.off]}</p>`}
${chart && html`<h2>Calls per hour by outcome</h2>${chart.clipped && html`<p class="muted">The chart shows the last 31 days of the range.</p>`}${renderHourlyChart(chart.counts, chart.from, chart.to)}`}
${
  !('off' in trail) &&
  problems.length === 0 &&
  html`<h2>Events</h2>
<p>Export this filtered set: <a href="${AUDIT_PATH}?${query}${query && '&'}format=csv">CSV</a> · <a href="${AUDIT_PATH}?${query}${query && '&'}format=jsonl">JSON Lines</a></p>
${trail.events.length === 0 ? html`<p class="muted">No events match.</p>` : eventsTable(trail.events, true)}
${trail.next && html`<p><a href="${AUDIT_PATH}?${query}${query && '&'}before=${cursorParam(trail.next)}">Older events</a></p>`}`
}`;
  return htmlPage('Audit trail', body, { status: problems.length > 0 ? 400 : 200 });
}

const LABELS: Record<FilterField, string> = {
  person: 'Person (email)',
  group: 'Group',
  upstream: 'Upstream',
  app: 'App (client id)',
  tool: 'Tool',
  outcome: 'Outcome',
  from: 'From (UTC)',
  to: 'To (UTC)',
};

function filterForm(typed: Record<FilterField, string>): SafeHtml {
  return html`<form method="get" action="${AUDIT_PATH}" style="display:grid;grid-template-columns:repeat(4,1fr);gap:.5rem">${FILTER_FIELDS.map(
    (field) =>
      html`<label class="muted">${LABELS[field]}<br><input name="${field}" value="${typed[field]}" maxlength="200" style="width:100%;box-sizing:border-box"${
        field === 'from' || field === 'to' ? html` placeholder="YYYY-MM-DDTHH:MM"` : ''
      }></label>`,
  )}<div class="buttons" style="margin-top:.5rem"><button class="primary" type="submit">Filter</button><a href="${AUDIT_PATH}">Clear</a></div></form>`;
}

function eventsTable(events: readonly StoredEvent[], everyone: boolean): SafeHtml {
  return html`<table><tr><th>When (UTC)</th>${everyone && html`<th>Person</th>`}<th>App</th><th>Upstream</th><th>What</th><th>Outcome</th></tr>${events.map(
    (event) =>
      html`<tr><td><code>${new Date(event.time).toISOString().slice(0, 19).replace('T', ' ')}</code></td>${
        everyone &&
        html`<td>${event.email ?? ''}${event.actor && event.actor !== event.email ? html`<br><span class="muted">by ${event.actor}</span>` : ''}</td>`
      }<td>${event.clientName ?? ''}${event.clientId ? html`<br><span class="muted">${event.clientId}</span>` : ''}</td><td>${event.upstream ?? ''}</td><td>${what(event)}</td><td>${
        event.outcome
      }${event.status ? html`<br><span class="muted">HTTP ${event.status}${event.upstreamStatus ? ` (upstream ${event.upstreamStatus})` : ''}</span>` : ''}</td></tr>`,
  )}</table>`;
}

function what(event: StoredEvent): SafeHtml {
  if (event.kind !== 'mcp_proxy') return html`${event.kind.replace(/_/g, ' ')}`;
  return html`${event.rpcMethod ?? html`<span class="muted">no JSON-RPC message</span>`}${event.tool ? html` <code>${event.tool}</code>` : ''}${
    // Only where the upstream keeps arguments (audit.arguments): the client's own input, escaped like the rest.
    event.arguments ? html`<br><code class="arguments" style="white-space:pre-wrap;word-break:break-all">${event.arguments}</code>` : ''
  }${event.durationMs !== null ? html`<br><span class="muted">${event.durationMs} ms</span>` : ''}`;
}

/** The filters as typed, as a query string for the paging and export links. */
function filterQuery(typed: Record<FilterField, string>): string {
  return new URLSearchParams(FILTER_FIELDS.filter((field) => typed[field]).map((field) => [field, typed[field]])).toString();
}

import { upstreamLabel } from '../config';
import { html, htmlPage, type SafeHtml } from '../lib';
import { takesOwnTokens } from '../upstreams';
import { activitySection, type Trail } from './audit-page';
import type { AggregateView, PersonView, UpstreamView } from './data';
import { AUDIT_PATH, CONNECTIONS_PATH, type Session } from './session';

export const NOTICES = {
  saved: 'Your token was checked and saved.',
  deleted: 'The token was deleted, and the apps connected with it were disconnected.',
  disconnected: 'The app was disconnected: its tokens no longer work.',
} as const;
export type Notice = keyof typeof NOTICES;

export interface ConnectionsPageOptions {
  session: Session;
  origin: string;
  own: PersonView;
  /** For an admin: everyone else. */
  others?: PersonView[];
  /** The person's own recent events from the audit trail. */
  activity?: Trail;
  notice?: Notice;
  /** A problem with the last action, e.g. a refused token, for one upstream. */
  problem?: { upstream: string; message: string };
  status?: number;
}

/** /connections: what a person connected, and the buttons to undo it. */
export function renderConnectionsPage(options: ConnectionsPageOptions): Response {
  const { session, own, others } = options;
  const notice = options.notice && html`<p class="warn">${NOTICES[options.notice]}</p>`;
  return htmlPage(
    'Your connections',
    html`<h1>Your connections</h1>
<p>Signed in as <strong>${session.email}</strong>.</p>
<p>${own.groups && own.groups.length > 0 ? html`Your groups, as Cloudflare Access sent them: ${groupList(own.groups)}.` : html`Cloudflare Access sent no groups for you.`}</p>
${form(session, { action: 'sign-out' }, 'Sign out')}
${notice}
${own.upstreams.map((view) => upstreamSection(options, own.email, view, true))}
${own.aggregates.map((view) => aggregateSection(options, own, view))}
${own.upstreams.length === 0 && own.aggregates.length === 0 && html`<p>There is no server here you may use.</p>`}
${options.activity && activitySection(options.activity)}
${session.admin && html`<p><a href="${AUDIT_PATH}">Everyone's activity: the audit trail (admin)</a></p>`}
${others && others.length > 0 && html`<h1 style="margin-top:2.5rem">Everyone (admin)</h1>${others.map((person) => personSection(options, person))}`}`,
    { status: options.status ?? 200 },
  );
}

function upstreamSection(options: ConnectionsPageOptions, email: string, view: UpstreamView, own: boolean): SafeHtml {
  const { session, origin } = options;
  const { upstream, token, apps } = view;
  const name = upstreamLabel(upstream) ?? 'MCP server';
  const problem = own && options.problem?.upstream === upstream.name ? html`<p class="warn">${options.problem.message}</p>` : undefined;
  const tokenPart = takesOwnTokens(upstream)
    ? html`<p>${
        token
          ? html`Your token${token.lastFour ? html`, ending in <code>${token.lastFour}</code>,` : ''} was saved ${when(token.savedAt)}.`
          : html`No token saved.`
      }</p>
${token && form(session, { action: 'delete-token', upstream: upstream.name, email }, 'Delete token (disconnects its apps)')}
${own && replaceForm(session, upstream.name, token !== undefined)}
${problem}`
    : undefined;
  return html`<h2>${name}</h2>
<p class="muted">Connector URL: <code>${origin}${upstream.path}</code></p>
${tokenPart}
${appsTable(session, email, apps)}`;
}

/** An aggregate's apps; the tokens it uses are its upstreams' own, shown in their sections. */
function aggregateSection(options: ConnectionsPageOptions, person: PersonView, view: AggregateView): SafeHtml {
  const { aggregate, apps } = view;
  const reaches = aggregate.upstreams.map((u, i) => html`${i > 0 ? ', ' : ''}<strong>${upstreamLabel(u) ?? u.name}</strong>`);
  // Skipped at sign-in, or deleted since: the aggregate goes without these until a token is added.
  const missing = person.upstreams.filter((v) => aggregate.upstreams.includes(v.upstream) && takesOwnTokens(v.upstream) && !v.token);
  return html`<h2>${aggregate.title ?? aggregate.name}</h2>
<p class="muted">Connector URL: <code>${options.origin}${aggregate.path}</code></p>
<p>One connector for ${reaches}, with the same tokens as each of them.</p>
${missing.length > 0 && html`<p class="warn">Without your token for ${missing.map((v, i) => html`${i > 0 ? ', ' : ''}${upstreamLabel(v.upstream) ?? v.upstream.name}`)}, their tools are left out here: add it in their section.</p>`}
${appsTable(options.session, person.email, apps)}`;
}

function personSection(options: ConnectionsPageOptions, person: PersonView): SafeHtml {
  const rows = person.upstreams.filter((view) => view.token || view.apps.length > 0);
  const aggregates = person.aggregates.filter((view) => view.apps.length > 0);
  const groups = person.groups === undefined ? html`none known` : person.groups.length === 0 ? html`none` : groupList(person.groups);
  return html`<h2>${person.email}</h2><p class="muted">Groups at their last sign-in: ${groups}</p>${rows.map(
    (view) =>
      html`<p><strong>${upstreamLabel(view.upstream) ?? 'MCP server'}</strong>${
        takesOwnTokens(view.upstream) ? (view.token ? html` · token saved ${when(view.token.savedAt)}` : html` · no token saved`) : ''
      }</p>${view.token && form(options.session, { action: 'delete-token', upstream: view.upstream.name, email: person.email }, 'Delete token')}${appsTable(options.session, person.email, view.apps)}`,
  )}${aggregates.map(
    (view) => html`<p><strong>${view.aggregate.title ?? view.aggregate.name}</strong></p>${appsTable(options.session, person.email, view.apps)}`,
  )}${rows.length === 0 && aggregates.length === 0 && html`<p class="muted">Nothing connected.</p>`}`;
}

function groupList(groups: readonly string[]): SafeHtml {
  return html`${groups.map((group, i) => html`${i > 0 ? ', ' : ''}<code>${group}</code>`)}`;
}

function appsTable(session: Session, email: string, apps: UpstreamView['apps']): SafeHtml {
  if (apps.length === 0) return html`<p class="muted">No apps connected.</p>`;
  return html`<table><tr><th>App</th><th>Sends tokens to</th><th>Connected</th><th></th></tr>${apps.map(
    (app) =>
      html`<tr><td>${app.clientName}</td><td><code>${app.redirectHost}</code></td><td>${when(app.connectedAt)}</td><td>${form(
        session,
        { action: 'disconnect', grant: app.grantId, email },
        'Disconnect',
      )}</td></tr>`,
  )}</table>`;
}

function replaceForm(session: Session, upstream: string, replacing: boolean): SafeHtml {
  return html`<form method="post" action="${CONNECTIONS_PATH}">
<input type="hidden" name="csrf" value="${session.csrf}"><input type="hidden" name="action" value="replace-token"><input type="hidden" name="upstream" value="${upstream}">
<label>${replacing ? 'Replace it' : 'Add yours'}<br><input type="password" name="token" required maxlength="4096" autocomplete="off" spellcheck="false"></label>
<div class="buttons"><button class="primary" type="submit">Check and save</button></div></form>`;
}

function form(session: Session, fields: Record<string, string>, label: string): SafeHtml {
  return html`<form method="post" action="${CONNECTIONS_PATH}"><input type="hidden" name="csrf" value="${session.csrf}">${Object.entries(fields).map(
    ([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`,
  )}<button type="submit">${label}</button></form>`;
}

function when(seconds: number): string {
  if (!seconds) return 'at an unknown time';
  return `${new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** After sign-out. */
export function renderSignedOut(headers: Headers): Response {
  return htmlPage(
    'Signed out',
    html`<h1>Signed out</h1><p>You are signed out of this page. Your apps stay connected.</p><p><a href="${CONNECTIONS_PATH}">Sign in again</a></p>`,
    { headers },
  );
}

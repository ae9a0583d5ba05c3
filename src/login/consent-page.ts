import type { ConsentDescription } from '@cloudflare/workers-oauth-provider';
import { html, htmlPage } from '../lib';

/**
 * The consent page. Everything in `details` may come from the client (its registration or
 * metadata document) and is escaped by `html`. `upstream` names the server being connected (its
 * title or name; undefined for the single `/mcp` one). `reaches` names, for an aggregate, every
 * upstream behind it (config, escaped all the same). `headers` come from `beginConsent`: they
 * bind the form's handle to this browser and forbid framing.
 */
export function renderConsentPage(
  details: ConsentDescription,
  upstream: string | undefined,
  handle: string,
  headers: Headers,
  reaches: readonly string[] = [],
): Response {
  const server = upstream === undefined ? html`this MCP server` : html`<strong>${upstream}</strong>`;
  const scopeText: Record<string, string> = {
    mcp: `Use ${upstream === undefined ? 'this server' : upstream}'s tools and data as you, through this gateway`,
  };
  const publisher = details.clientDomain
    ? html`<p>Published by <strong>${details.clientDomain}</strong>: its identity is a document on that domain.</p>`
    : html`<p class="warn">This app registered itself, so its name is not verified. Continue only if you just started connecting it.</p>`;
  const loopback =
    details.redirectIsLoopback &&
    html`<p class="warn">Access will go to an app on <strong>this computer</strong>. Continue only if you just started signing in from it.</p>`;
  return htmlPage(
    upstream === undefined ? `Connect ${details.clientName}?` : `Connect ${details.clientName} to ${upstream}?`,
    html`<h1>Connect ${details.clientName}${upstream === undefined ? '' : html` to ${upstream}`}?</h1>
<p><strong>${details.clientName}</strong> wants to use ${server} on your behalf.</p>
${publisher}
<dl>
  ${reaches.length > 0 && html`<dt>Servers it reaches</dt><dd>${reaches.map((name) => html`<div>${name}</div>`)}</dd>`}
  <dt>Access goes to</dt><dd><code>${details.redirectHost}</code></dd>
  <dt>Permissions</dt><dd>${details.scope.map((scope) => html`<div>${scopeText[scope] ?? scope}</div>`)}</dd>
</dl>
${loopback}
<form method="post" action="/authorize">
  <input type="hidden" name="handle" value="${handle}">
  <div class="buttons">
    <button class="primary" type="submit" name="decision" value="approve">Approve</button>
    <button type="submit" name="decision" value="deny">Deny</button>
  </div>
</form>
<p class="muted">After you approve, you sign in with Cloudflare Access.</p>`,
    { headers },
  );
}

import type { ConsentDescription } from '@cloudflare/workers-oauth-provider';
import { html, htmlPage } from '../lib/html';

const SCOPE_TEXT: Record<string, string> = {
  mcp: "Use this server's tools and data as you, through this gateway",
};

/**
 * The consent page. Everything in `details` may come from the client (its registration or
 * metadata document) and is escaped by `html`. `headers` come from `beginConsent`: they bind the
 * form's handle to this browser and forbid framing.
 */
export function renderConsentPage(details: ConsentDescription, handle: string, headers: Headers): Response {
  const publisher = details.clientDomain
    ? html`<p>Published by <strong>${details.clientDomain}</strong>: its identity is a document on that domain.</p>`
    : html`<p class="warn">This app registered itself, so its name is not verified. Continue only if you just started connecting it.</p>`;
  const loopback =
    details.redirectIsLoopback &&
    html`<p class="warn">Access will go to an app on <strong>this computer</strong>. Continue only if you just started signing in from it.</p>`;
  return htmlPage(
    `Connect ${details.clientName}?`,
    html`<h1>Connect ${details.clientName}?</h1>
<p><strong>${details.clientName}</strong> wants to use this MCP server on your behalf.</p>
${publisher}
<dl>
  <dt>Access goes to</dt><dd><code>${details.redirectHost}</code></dd>
  <dt>Permissions</dt><dd>${details.scope.map((scope) => html`<div>${SCOPE_TEXT[scope] ?? scope}</div>`)}</dd>
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

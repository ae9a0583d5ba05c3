import { html, htmlPage } from '../lib';

export interface TokenPageOptions {
  /** The upstream's title or name. */
  server: string;
  /** Where the form posts. */
  action: string;
  /** Hidden fields that tie the post to this page (a browser-bound handle, a CSRF token). */
  fields: Record<string, string>;
  tokenHelp: URL | undefined;
  /** Why the page is shown again: a refused or malformed token, an unreachable server. */
  problem?: string;
  /** What the button says, e.g. "Save and continue". */
  submit: string;
  /** A line above the form, e.g. which aggregate asks for this token. */
  context?: string;
  /** A second button that goes on without a token (an aggregate's upstream), and what it says. */
  skip?: string;
  headers?: Headers;
  status?: number;
}

/**
 * The page that asks a person for their own token. One password-type input: the token is never
 * echoed back, not even after a mistake, and the page never shows a stored token.
 */
export function renderTokenPage(options: TokenPageOptions): Response {
  const { server, tokenHelp } = options;
  const help = tokenHelp && html`<p>Make one at <a href="${tokenHelp.href}" rel="noopener noreferrer" target="_blank">${tokenHelp.host}</a>.</p>`;
  return htmlPage(
    `Your token for ${server}`,
    html`<h1>Your token for ${server}</h1>
<p><strong>${server}</strong> works with a token of your own, so that what your apps do there is done as you, with the permissions you gave that token.</p>
${options.context && html`<p>${options.context}</p>`}
${help}
${options.problem && html`<p class="warn">${options.problem}</p>`}
<form method="post" action="${options.action}">
  ${Object.entries(options.fields).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
  <p><label>Token<br><input type="password" name="token" required maxlength="4096" autocomplete="off" spellcheck="false"></label></p>
  <div class="buttons"><button class="primary" type="submit">${options.submit}</button>${
    options.skip && html`<button type="submit" name="skip" value="1" formnovalidate>${options.skip}</button>`
  }</div>
</form>
<p class="muted">The gateway checks it with ${server}, then keeps it encrypted and never shows it again. Replace or delete it any time at <a href="/connections">/connections</a>.</p>`,
    { status: options.status ?? 200, ...(options.headers ? { headers: options.headers } : {}) },
  );
}

const VISIBLE_ASCII = /^[\x21-\x7e]{1,4096}$/;

/** A pasted token, trimmed, if it is 1 to 4096 visible ASCII characters (what a header can carry). */
export function readPastedToken(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const token = value.trim();
  return VISIBLE_ASCII.test(token) ? token : undefined;
}

export const MALFORMED_TOKEN = 'That is not a token: paste 1 to 4096 visible characters, with no spaces.';
export const refusedBy = (server: string) => `That token was refused by ${server}. Check it and its permissions, then paste it again.`;
export const unreachable = (server: string) => `${server} could not be reached to check the token, so nothing was saved. Try again in a moment.`;

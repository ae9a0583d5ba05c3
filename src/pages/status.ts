/** The pages the gateway answers before any leg runs: a wrong scheme, a broken configuration. */
import { emit } from '../audit';
import type { ConfigError } from '../config';
import { html, htmlPage } from '../lib';

const reported = new WeakSet<ConfigError>();

/** The library accepts only https origins, or http on loopback (wrangler dev). */
export function useHttpsPage(): Response {
  return htmlPage('Use https', html`<h1>Use https</h1><p>This gateway must be reached over https.</p>`, { status: 421 });
}

/** The HTML 500 page of a misconfigured deployment; the details go to the log, once per error. */
export function misconfiguredPage(error: ConfigError): Response {
  if (!reported.has(error)) {
    reported.add(error);
    emit({ event: 'misconfigured', problems: error.problems });
  }
  return htmlPage(
    'Gateway misconfigured',
    html`<h1>This gateway is misconfigured</h1><p>Its operator needs to fix its settings; the Worker's logs and <code>/health</code> say which.</p>`,
    { status: 500 },
  );
}

import { type Config, upstreamLabel } from '../config';
import { html, htmlPage } from '../lib';

/** Every connector URL, by title: never an upstream's own host. */
export function landingPage(origin: string, config: Config): Response {
  const rows = config.upstreams.map((upstream) => html`<dt>${upstreamLabel(upstream) ?? 'MCP server'}</dt><dd><code>${origin}${upstream.path}</code></dd>`);
  return htmlPage(
    'MCP OAuth gateway',
    html`<h1>MCP OAuth gateway</h1><p>Add ${config.upstreams.length === 1 ? 'this URL' : 'one of these URLs'} as a custom connector in your MCP client:</p><dl>${rows}</dl>`,
  );
}

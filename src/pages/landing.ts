import { type Config, upstreamLabel } from '../config';
import { html, htmlPage } from '../lib';

/** Every connector URL, by title: never an upstream's own host. */
export function landingPage(origin: string, config: Config): Response {
  const rows = config.upstreams.map((upstream) => html`<dt>${upstreamLabel(upstream) ?? 'MCP server'}</dt><dd><code>${origin}${upstream.path}</code></dd>`);
  // An aggregate is one connector over several: say which, so people pick it or the direct ones.
  const aggregates = config.aggregates.map(
    (aggregate) =>
      html`<dt>${aggregate.title ?? aggregate.name}</dt><dd><code>${origin}${aggregate.path}</code><div class="muted">One connector for ${aggregate.upstreams
        .map((u) => upstreamLabel(u) ?? u.name)
        .join(', ')}</div></dd>`,
  );
  const count = config.upstreams.length + config.aggregates.length;
  return htmlPage(
    'MCP OAuth gateway',
    html`<h1>MCP OAuth gateway</h1><p>Add ${count === 1 ? 'this URL' : 'one of these URLs'} as a custom connector in your MCP client:</p><dl>${rows}${aggregates}</dl>`,
  );
}

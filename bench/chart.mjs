// @ts-check
/**
 * docs/bench.svg from one run's figures: hand-written SVG (no charting dependency), one panel per
 * part of the bench, horizontal bars with their values written out, so the README shows the last
 * committed run as it was measured.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WIDTH = 900;
const LABEL = 300;
const BAR = 420;
const ROW = 22;
const COLORS = { gateway: '#f6821f', other: '#8a9bb0', p99: '#3b4a5c' };

/** @param {string} text */
function esc(text) {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * One panel of bars. `marker` (e.g. a p99) is drawn as a tick on the same scale.
 * @param {string} title
 * @param {Array<{ label: string, value: number, marker?: number, highlight?: boolean, text: string }>} rows
 * @param {number} top
 */
function panel(title, rows, top = 0) {
  // Scaled to the bars: a p99 far out is drawn at the edge, its value written beside it.
  const max = Math.max(...rows.map((r) => r.value), 1e-9) * 1.5;
  const scale = (/** @type {number} */ v) => (Math.min(v, max) / max) * BAR;
  const parts = [`<text x="16" y="${top + 16}" class="title">${esc(title)}</text>`];
  rows.forEach((row, i) => {
    const y = top + 28 + i * ROW;
    const width = Math.max(1, scale(row.value));
    parts.push(
      `<text x="${LABEL - 8}" y="${y + 13}" class="label" text-anchor="end">${esc(row.label)}</text>`,
      `<rect x="${LABEL}" y="${y + 2}" width="${width.toFixed(1)}" height="${ROW - 6}" fill="${row.highlight ? COLORS.gateway : COLORS.other}"/>`,
    );
    if (row.marker !== undefined) {
      const x = LABEL + scale(row.marker);
      parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${y}" y2="${y + ROW - 2}" stroke="${COLORS.p99}" stroke-width="2"/>`);
    }
    const textX = LABEL + Math.max(width, row.marker !== undefined ? scale(row.marker) : 0) + 8;
    parts.push(`<text x="${textX.toFixed(1)}" y="${y + 13}" class="value">${esc(row.text)}</text>`);
  });
  return { svg: parts.join('\n'), height: 28 + rows.length * ROW + 14 };
}

/** @param {any} r the figures proxy-latency.mjs writes to bench/results/ */
export function renderChart(r) {
  const ms = (/** @type {number} */ v) => `${v.toFixed(2)} ms`;
  const lat = (/** @type {string} */ label, /** @type {{ median: number, p99: number }} */ s, highlight = false) => ({
    label,
    value: s.median,
    marker: s.p99,
    highlight,
    text: `${ms(s.median)} (p99 ${ms(s.p99)})`,
  });
  const panels = [
    panel(`Per-request latency, ${r.requests} interleaved pings (median bar, p99 tick)`, [
      lat('upstream direct', r.latency.direct),
      lat('bare pass-through Worker', r.latency.bare),
      lat('KV peer (1 KV read, forward)', r.latency.peer),
      lat('gateway /mcp', r.latency.gateway, true),
      lat('gateway /u3/mcp (8 upstreams)', r.latency.named, true),
      ...(r.latency.quiet ? [lat('gateway, log line not printed', r.latency.quiet)] : []),
    ]),
    panel(`Load: ${r.load.sessions} sessions, ${r.load.seconds} s each, ping + tools/call (req/s)`, [
      { label: 'bare pass-through Worker', value: r.load.bare.rps, text: `${r.load.bare.rps.toFixed(0)} req/s, ${r.load.bare.errors} errors` },
      {
        label: 'gateway',
        value: r.load.gateway.rps,
        highlight: true,
        text: `${r.load.gateway.rps.toFixed(0)} req/s, ${r.load.gateway.errors} errors (x${r.load.ratio.toFixed(2)})`,
      },
      ...(r.load.quiet
        ? [
            {
              label: 'gateway, log line not printed',
              value: r.load.quiet.rps,
              text: `${r.load.quiet.rps.toFixed(0)} req/s, ${r.load.quiet.errors} errors (x${r.load.ratios.quiet.toFixed(2)})`,
            },
          ]
        : []),
    ]),
    panel('First SSE event (median bar, p99 tick)', [
      lat('bare Worker, POST', r.firstEvent.barePost),
      lat('gateway, POST', r.firstEvent.gatewayPost, true),
      lat('bare Worker, GET stream', r.firstEvent.bareGet),
      lat('gateway, GET stream', r.firstEvent.gatewayGet, true),
      ...(r.firstEvent.quietPost ? [lat('gateway not printing, POST', r.firstEvent.quietPost), lat('gateway not printing, GET', r.firstEvent.quietGet)] : []),
    ]),
    panel(
      'Gateway stages inside workerd (µs per op)',
      Object.entries(r.stages)
        .filter(([, us]) => typeof us === 'number')
        .map(([name, us]) => ({
          label: name,
          value: Math.max(0, /** @type {number} */ (us)),
          highlight: name.startsWith('token'),
          text: `${/** @type {number} */ (us).toFixed(1)} µs`,
        })),
    ),
    panel(
      `Streaming ${Math.round(r.stream.bytes / 1048576)} MiB SSE (MiB/s; workerd RSS growth)`,
      r.stream.paths.map((/** @type {any} */ p) => ({
        label: p.name,
        value: p.MiBps,
        highlight: p.name.startsWith('gateway'),
        text: `${p.MiBps.toFixed(0)} MiB/s, +${p.growthMiB.toFixed(1)} MiB RSS`,
      })),
    ),
    ...(r.aggregate
      ? [
          panel(`Aggregate tools/list over five upstreams (${r.aggregate.delaysMs.join(', ')} ms) and tools/call (median bar, p99 tick)`, [
            lat(`slowest (${Math.max(...r.aggregate.delaysMs)} ms) via the plain proxy`, r.aggregate.list.slowestThroughGateway),
            {
              label: 'sum of the five, one by one (reference)',
              value: r.aggregate.list.sumOfDirectMedians,
              text: ms(r.aggregate.list.sumOfDirectMedians),
            },
            lat('aggregate, first list (none kept)', r.aggregate.list.first, true),
            lat('aggregate, cached list', r.aggregate.list.cached, true),
            lat('tools/call, plain proxy (2025)', r.aggregate.call.plain),
            lat('tools/call, aggregate (2025 session)', r.aggregate.call.aggregate, true),
            ...(r.aggregate.call.plainModern
              ? [
                  lat('tools/call, plain proxy (2026-07-28)', r.aggregate.call.plainModern),
                  lat('tools/call, aggregate (2026-07-28)', r.aggregate.call.aggregateModern, true),
                ]
              : []),
          ]),
        ]
      : []),
  ];
  let y = 44;
  const body = [];
  for (const p of panels) {
    body.push(`<g transform="translate(0 ${y})">${p.svg}</g>`);
    y += p.height;
  }
  const targets = r.targets ?? [];
  const met = targets.filter((/** @type {{ met: boolean }} */ t) => t.met).length;
  const quietMet = targets.filter((/** @type {{ metNotPrinting?: boolean }} */ t) => t.metNotPrinting).length;
  const footer = `${met} of ${targets.length} targets met (${quietMet} with the log line not printed) · ${r.when} · wrangler dev on loopback, shared 2-core machine: compare within a run only`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y + 30}" viewBox="0 0 ${WIDTH} ${y + 30}" font-family="system-ui, -apple-system, Segoe UI, sans-serif">
<style>.title{font-size:14px;font-weight:600;fill:#1d2733}.label{font-size:12px;fill:#1d2733}.value{font-size:11px;fill:#3b4a5c}.head{font-size:17px;font-weight:700;fill:#1d2733}.foot{font-size:11px;fill:#5d6b7a}</style>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="16" y="28" class="head">mcp-oauth-gateway: per-request cost (npm run bench)</text>
${body.join('\n')}
<text x="16" y="${y + 16}" class="foot">${esc(footer)}</text>
</svg>
`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const figures = JSON.parse(await readFile(process.argv[2] ?? join(root, 'bench/results/latest.json'), 'utf8'));
  await writeFile(join(root, 'docs/bench.svg'), renderChart(figures));
}

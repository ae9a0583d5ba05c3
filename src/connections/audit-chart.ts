/**
 * The calls-per-hour chart of /connections/audit: inline SVG drawn here, so the pages keep
 * `default-src 'none'` and carry no script. Bars are stacked by outcome, one per hour.
 */
import type { HourCount } from '../audit';
import { html, type SafeHtml } from '../lib';

const HOUR = 3_600_000;
const WIDTH = 640;
const HEIGHT = 160;
const COLORS: Record<string, string> = {
  ok: '#1f883d',
  upstream_error: '#cf222e',
  refused_by_policy: '#bf8700',
  rate_limited: '#8250df',
  not_allowed: '#d1242f',
  auth_failed: '#57606a',
};
const OTHER = '#8c959f';

/** The chart for [from, to): empty hours drawn as gaps, the tallest hour filling the height. */
export function renderHourlyChart(counts: readonly HourCount[], from: number, to: number): SafeHtml {
  const first = Math.floor(from / HOUR) * HOUR;
  const hours = Math.max(1, Math.ceil((to - first) / HOUR));
  const byHour = new Map<number, HourCount[]>();
  for (const count of counts) byHour.set(count.hour, [...(byHour.get(count.hour) ?? []), count]);
  const tallest = Math.max(1, ...[...byHour.values()].map((list) => list.reduce((sum, c) => sum + c.count, 0)));
  const step = WIDTH / hours;
  const bars: SafeHtml[] = [];
  for (const [hour, list] of byHour) {
    const x = ((hour - first) / HOUR) * step;
    let y = HEIGHT;
    for (const { outcome, count } of list) {
      const h = (count / tallest) * HEIGHT;
      y -= h;
      bars.push(
        html`<rect x="${x.toFixed(2)}" y="${y.toFixed(2)}" width="${Math.max(step - 1, 0.5).toFixed(2)}" height="${h.toFixed(2)}" fill="${COLORS[outcome] ?? OTHER}"><title>${new Date(hour).toISOString().slice(0, 13)}:00 UTC: ${count} ${outcome}</title></rect>`,
      );
    }
  }
  const outcomes = [...new Set(counts.map((c) => c.outcome))].sort();
  const legend = outcomes.map(
    (outcome, i) =>
      html`<rect x="${i * 110}" y="${HEIGHT + 24}" width="10" height="10" fill="${COLORS[outcome] ?? OTHER}"/><text x="${i * 110 + 14}" y="${HEIGHT + 33}">${outcome}</text>`,
  );
  const label = (time: number, anchor: string, x: number) =>
    html`<text x="${x}" y="${HEIGHT + 14}" text-anchor="${anchor}">${new Date(time).toISOString().slice(0, 16).replace('T', ' ')}</text>`;
  return html`<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Calls per hour by outcome" viewBox="0 0 ${WIDTH} ${HEIGHT + 40}" width="100%" font-size="10" font-family="system-ui,sans-serif" fill="#59636e">
<title>Calls per hour by outcome (tallest hour: ${tallest})</title>
<line x1="0" y1="${HEIGHT}" x2="${WIDTH}" y2="${HEIGHT}" stroke="#d1d9e0"/>${bars}${label(first, 'start', 0)}${label(first + hours * HOUR, 'end', WIDTH)}${legend}</svg>`;
}

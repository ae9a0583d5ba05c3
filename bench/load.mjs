// @ts-check
/**
 * The load part of `npm run bench`: N concurrent MCP sessions, each sending `ping` and
 * `tools/call` in turn as fast as answers come, against several paths in alternating slices
 * (A B B A, so a drift in the machine's load falls on both alike). Counts answered requests per
 * second and errors (any status but 200, a failed fetch, or an answer without a result).
 */
import { performance } from 'node:perf_hooks';

/**
 * @param {{ sessions: number, seconds: number, paths: Record<string, { url: string, headers: Record<string, string> }> }} options
 */
export async function runLoad({ sessions, seconds, paths }) {
  const names = Object.keys(paths);
  const order = [...names, ...[...names].reverse()];
  const sliceSeconds = seconds / 2;
  /** @type {Record<string, { requests: number, errors: number, ms: number[], elapsed: number }>} */
  const totals = Object.fromEntries(names.map((name) => [name, { requests: 0, errors: 0, ms: [], elapsed: 0 }]));
  for (const name of order) {
    const path = /** @type {{ url: string, headers: Record<string, string> }} */ (paths[name]);
    const total = /** @type {{ requests: number, errors: number, ms: number[], elapsed: number }} */ (totals[name]);
    const started = performance.now();
    const deadline = started + sliceSeconds * 1000;
    await Promise.all(Array.from({ length: sessions }, (_, session) => runSession(path, session, deadline, total)));
    total.elapsed += (performance.now() - started) / 1000;
  }
  /** @type {Record<string, { rps: number, errors: number, requests: number, latency: { median: number, p99: number } }>} */
  const result = {};
  for (const [name, t] of Object.entries(totals)) {
    result[name] = { rps: t.requests / t.elapsed, errors: t.errors, requests: t.requests, latency: quantiles(t.ms) };
  }
  // Each path's throughput over the first one's (the baseline).
  const base = result[names[0] ?? '']?.rps ?? Number.NaN;
  const ratios = Object.fromEntries(names.slice(1).map((name) => [name, (result[name]?.rps ?? 0) / base]));
  return { sessions, seconds, ...result, ratios, ratio: ratios[names[1] ?? ''] ?? Number.NaN };
}

/**
 * @param {{ url: string, headers: Record<string, string> }} path
 * @param {number} session
 * @param {number} deadline
 * @param {{ requests: number, errors: number, ms: number[] }} total
 */
async function runSession(path, session, deadline, total) {
  // A session of its own, as a client opens one (untimed): the gateway hands out a handle for
  // the upstream's id and checks it on every request (issue #16).
  const initialize = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {} } };
  const opened = await fetch(path.url, { method: 'POST', headers: path.headers, body: JSON.stringify(initialize) });
  await opened.arrayBuffer();
  const headers = { ...path.headers, 'Mcp-Session-Id': opened.headers.get('Mcp-Session-Id') ?? `bench-load-${session}` };
  for (let i = 0; performance.now() < deadline; i++) {
    const message =
      i % 2 === 0
        ? { jsonrpc: '2.0', id: i, method: 'ping' }
        : { jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'echo', arguments: { text: `hello ${session}` } } };
    const started = performance.now();
    try {
      const response = await fetch(path.url, { method: 'POST', headers, body: JSON.stringify(message) });
      const text = await response.text();
      if (response.status !== 200 || !text.includes('"result"')) total.errors += 1;
      else total.requests += 1;
    } catch {
      total.errors += 1;
    }
    total.ms.push(performance.now() - started);
  }
}

/** @param {number[]} values */
function quantiles(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (/** @type {number} */ q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
  return { median: at(0.5), p99: at(0.99) };
}

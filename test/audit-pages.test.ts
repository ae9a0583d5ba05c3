import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { auditDb, migrateAuditDb } from './fixtures/audit';
import type { Browser } from './fixtures/browser';
import { Gateway, gatewayEnv, registerClient } from './fixtures/gateway';
import { openConnections } from './fixtures/own-tokens';

/**
 * Issue #20, the pages: a person's own trail on /connections and the admin's /connections/audit
 * (filters, keyset paging, export, chart), over the real local D1 with the migration applied and
 * a seeded table of 100,000 events.
 */

const db = () => auditDb;
const ADMIN = 'admin@example.com';
const SEEDED = 100_000;
/** 2026-11-01T00:00Z; seeded event n is at T0 + n × 10 s, so the table spans about 11.6 days. */
const T0 = Date.UTC(2026, 10, 1);
const STEP = 10_000;
const UPSTREAMS = ['notes', 'mcp', 'search'];

/** What the seeding SQL gives event n, for the expected counts. */
function seeded(n: number) {
  return {
    time: T0 + n * STEP,
    email: `user${n % 50}@example.com`,
    group: n % 2 === 0 ? 'ops' : 'dev',
    clientId: `client-${n % 7}`,
    upstream: UPSTREAMS[n % 3] as string,
    tool: `tool_${n % 20}`,
    outcome: n % 10 === 0 ? 'upstream_error' : n % 25 === 1 ? 'rate_limited' : 'ok',
  };
}
const expected = (match: (e: ReturnType<typeof seeded>) => boolean) => Array.from({ length: SEEDED }, (_, n) => seeded(n)).filter(match);

beforeAll(async () => {
  await migrateAuditDb();
  await db().prepare('DELETE FROM audit_events').run();
  // Batched: a recursive CTE writes 20,000 rows per statement, the ids following n. (D1 binds a
  // JS number as REAL: cast it, or 'user' || n reads user7.0.)
  for (let start = 0; start < SEEDED; start += 20_000) {
    await db()
      .prepare(
        `INSERT INTO audit_events (id, time, kind, email, groups, client_id, client_name, upstream, rpc_method, tool, outcome, status, upstream_status, duration_ms)
         WITH RECURSIVE seq(n) AS (SELECT CAST(?1 AS INTEGER) UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < ?2)
         SELECT n + 1, ?3 + n * ?4, 'mcp_proxy', 'user' || (n % 50) || '@example.com', CASE n % 2 WHEN 0 THEN '["ops"]' ELSE '["dev"]' END,
           'client-' || (n % 7), 'App ' || (n % 7), CASE n % 3 WHEN 0 THEN 'notes' WHEN 1 THEN 'mcp' ELSE 'search' END, 'tools/call',
           'tool_' || (n % 20), CASE WHEN n % 10 = 0 THEN 'upstream_error' WHEN n % 25 = 1 THEN 'rate_limited' ELSE 'ok' END,
           CASE WHEN n % 10 = 0 THEN 502 WHEN n % 25 = 1 THEN 429 ELSE 200 END, 200, n % 300 FROM seq`,
      )
      .bind(start, start + 20_000, T0, STEP)
      .run();
  }
}, 60_000);

let gateway: Gateway;
beforeEach(async () => {
  gateway = await Gateway.start(gatewayEnv({ ADMIN_EMAILS: ADMIN }));
});
afterEach(() => {
  vi.unstubAllGlobals();
});

async function signedIn(email: string): Promise<Browser> {
  const { browser, page } = await openConnections(gateway, { email });
  expect(page.status).toBe(200);
  return browser;
}
const get = (browser: Browser, path: string) => gateway.fetch(path, { headers: browser.headers(), redirect: 'manual' });
/** The rows of the events table: one `<tr>` each after the header. */
const rowsOf = (page: string) => (page.split('<h2>Events</h2>')[1] ?? page.split('id="activity"')[1] ?? '').match(/<tr><td>/g)?.length ?? 0;
const timesOf = (page: string, kind = 'tools/call') =>
  [...page.matchAll(/<tr><td><code>([^<]+)<\/code>(.*?)<\/tr>/g)].filter((m) => m[2]?.includes(kind)).map((m) => m[1] as string);
const olderLink = (page: string) => /<a href="([^"]+)">Older (?:events|activity)<\/a>/.exec(page)?.[1]?.replace(/&#38;/g, '&');

describe('issue #20: /connections/audit for admins', () => {
  it('filters by person, tool, outcome and time range, and pages by keyset through exactly the matching events', async () => {
    const admin = await signedIn(ADMIN);
    const from = T0 + 2 * 86_400_000;
    const to = T0 + 9 * 86_400_000;
    const want = expected((e) => e.email === 'user10@example.com' && e.tool === 'tool_10' && e.outcome === 'upstream_error' && e.time >= from && e.time < to);
    expect(want.length).toBeGreaterThan(100);
    const iso = (t: number) => new Date(t).toISOString().slice(0, 16);
    let path: string | undefined = `/connections/audit?person=user10%40example.com&tool=tool_10&outcome=upstream_error&from=${iso(from)}&to=${iso(to)}`;
    const seen: string[] = [];
    while (path) {
      const response = await get(admin, path);
      expect(response.status).toBe(200);
      const page = await response.text();
      expect(rowsOf(page)).toBeLessThanOrEqual(100);
      seen.push(...timesOf(page));
      path = olderLink(page);
    }
    const shown = (t: number) => new Date(t).toISOString().slice(0, 19).replace('T', ' ');
    expect(seen).toEqual(want.map((e) => shown(e.time)).reverse());
  });

  it('filters by group, upstream and app', async () => {
    const admin = await signedIn(ADMIN);
    const page = await (await get(admin, '/connections/audit?group=ops&upstream=search&app=client-3&from=2026-11-01&to=2026-11-02')).text();
    const want = expected((e) => e.group === 'ops' && e.upstream === 'search' && e.clientId === 'client-3' && e.time < T0 + 86_400_000);
    expect(rowsOf(page)).toBe(Math.min(100, want.length));
    expect(timesOf(page)[0]).toBe(new Date((want.at(-1) as { time: number }).time).toISOString().slice(0, 19).replace('T', ' '));
  });

  it('exports the filtered set as CSV and as JSON Lines, streamed, every matching row once', async () => {
    const admin = await signedIn(ADMIN);
    const want = expected((e) => e.upstream === 'notes' && e.outcome !== 'ok' && e.group === 'ops');
    const csv = await get(admin, '/connections/audit?upstream=notes&group=ops&outcome=upstream_error&format=csv');
    expect(csv.status).toBe(200);
    expect(csv.headers.get('Content-Type')).toMatch(/^text\/csv/);
    expect(csv.headers.get('Content-Disposition')).toMatch(/^attachment; filename="audit-.*\.csv"$/);
    expect(csv.body).toBeInstanceOf(ReadableStream);
    const lines = (await csv.text()).trimEnd().split('\r\n');
    const errors = want.filter((e) => e.outcome === 'upstream_error');
    expect(lines[0]).toMatch(/^id,time,kind,email,/);
    expect(lines.length - 1).toBe(errors.length);

    const jsonl = await get(admin, '/connections/audit?upstream=notes&group=ops&format=jsonl');
    expect(jsonl.headers.get('Content-Type')).toMatch(/^application\/jsonl/);
    const events = (await jsonl.text())
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: number; time: string; upstream: string });
    expect(events.length).toBe(expected((e) => e.upstream === 'notes' && e.group === 'ops').length);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    expect(events.every((e) => e.upstream === 'notes')).toBe(true);
    expect((events[0]?.time ?? '') > (events.at(-1)?.time ?? '')).toBe(true);
  });

  it('says what is wrong with a bad date, outcome or page link, on the page, with a 400 and no 500', async () => {
    const admin = await signedIn(ADMIN);
    for (const [query, field] of [
      ['from=2026-02-31', 'from'],
      ['to=yesterday', 'to'],
      ['from=2026-11-02&to=2026-11-01', 'from'],
      ['outcome=exploded', 'outcome'],
      ['before=1,2,3', 'before'],
      ['format=xlsx', 'format'],
    ] as const) {
      const response = await get(admin, `/connections/audit?${query}`);
      expect(response.status, query).toBe(400);
      const page = await response.text();
      expect(page, query).toContain('Check the filters');
      expect(page, query).toContain(`&#34;${field}&#34;`);
    }
  });

  it("refuses a person who is not an admin, for everyone's trail and for another person's, with a 403", async () => {
    const alice = await signedIn('alice@example.com');
    for (const path of ['/connections/audit', '/connections/audit?person=bob%40example.com', '/connections/audit?format=csv']) {
      const response = await get(alice, path);
      expect(response.status, path).toBe(403);
      expect(await response.text()).not.toContain('user1@example.com');
    }
  });

  it('makes a member of an ADMIN_EMAILS group an admin of the trail', async () => {
    gateway = await Gateway.start(gatewayEnv({ ADMIN_EMAILS: 'group:auditors', ACCESS_SCOPES: 'openid email profile groups' }));
    const { browser } = await openConnections(gateway, { email: 'carol@example.com', groups: ['auditors'] });
    expect((await get(browser, '/connections/audit?person=user1%40example.com')).status).toBe(200);
  });

  it("draws calls per hour by outcome as inline SVG, with no script and the pages' CSP", async () => {
    const admin = await signedIn(ADMIN);
    const response = await get(admin, '/connections/audit?from=2026-11-01T00:00&to=2026-11-01T06:00');
    expect(response.headers.get('Content-Security-Policy')).toMatch(/^default-src 'none';/);
    const page = await response.text();
    const svg = /<svg[\s\S]*?<\/svg>/.exec(page)?.[0] ?? '';
    expect(svg).toContain('aria-label="Calls per hour by outcome"');
    // Six hours, three outcomes in each: 18 bars, and a title per bar saying its count.
    expect(svg.match(/<rect [^>]*><title>/g)?.length).toBe(18);
    expect(svg).toContain('2026-11-01T00:00 UTC: 36 upstream_error');
    expect(page).not.toMatch(/<script|javascript:|\son\w+=/i);
  });
});

describe("issue #20: a person's own trail on /connections", () => {
  it('shows their own last 100 events, newest first, and pages back to older ones', async () => {
    const browser = await signedIn('user7@example.com');
    const want = expected((e) => e.email === 'user7@example.com').reverse();
    const first = await (await get(browser, '/connections')).text();
    expect(rowsOf(first)).toBe(100);
    // Their sign-in to this page is the newest event; the seeded calls follow.
    expect(timesOf(first, 'sign in')).toHaveLength(1);
    const shown = (t: number) => new Date(t).toISOString().slice(0, 19).replace('T', ' ');
    expect(timesOf(first)).toEqual(want.slice(0, 99).map((e) => shown(e.time)));
    expect(first).not.toContain('user8@example.com');
    const older = olderLink(first);
    expect(older).toMatch(/^\/connections\?before=\d+,\d+#activity$/);
    const second = await (await get(browser, older as string)).text();
    expect(timesOf(second)).toEqual(want.slice(99, 199).map((e) => shown(e.time)));
    // No audit link for someone who is not an admin.
    expect(first).not.toContain('/connections/audit');
  });

  it('escapes a hostile tool name and app name on both pages, and keeps them from running as formulas in the CSV', async () => {
    const hostile = { tool: '<script>alert(1)</script>', client: '<img src=x onerror=alert(2)>', csvTool: '=HYPERLINK("https://evil.example","x")' };
    await db()
      .prepare(
        `INSERT INTO audit_events (time, kind, email, client_id, client_name, upstream, rpc_method, tool, outcome, status)
         VALUES (?1, 'mcp_proxy', 'mallory@example.com', 'c"x', ?2, 'notes', 'tools/call', ?3, 'ok', 200),
                (?1 + 1, 'mcp_proxy', 'mallory@example.com', '@SUM(1)', 'App', 'notes', 'tools/call', ?4, 'ok', 200)`,
      )
      .bind(Date.UTC(2026, 11, 1), hostile.client, hostile.tool, hostile.csvTool)
      .run();
    const own = await (await get(await signedIn('mallory@example.com'), '/connections')).text();
    const admin = await signedIn(ADMIN);
    const audit = await (await get(admin, '/connections/audit?person=mallory%40example.com&from=2026-12-01')).text();
    for (const page of [own, audit]) {
      expect(page).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
      expect(page).toContain('&#60;img src=x onerror=alert(2)&#62;');
      expect(page).not.toMatch(/<script|<img/i);
    }
    const csv = await (await get(admin, '/connections/audit?person=mallory%40example.com&format=csv')).text();
    expect(csv).toContain(`"'=HYPERLINK(""https://evil.example"",""x"")"`);
    expect(csv).toContain(",'@SUM(1),");
    expect(csv).toContain(',"c""x",');
    expect(csv).not.toMatch(/,=|,@|,\+|,-[^,]/);
  });

  it('names the app from the client registry when its events carry only the client id, escaped', async () => {
    const { clientId } = await registerClient(gateway, { client_name: 'Zed <b>Editor</b>' });
    await db()
      .prepare(
        "INSERT INTO audit_events (time, kind, email, client_id, upstream, rpc_method, tool, outcome, status) VALUES (?, 'mcp_proxy', 'zed@example.com', ?, 'mcp', 'tools/call', 'search', 'ok', 200)",
      )
      .bind(Date.UTC(2026, 11, 1), clientId)
      .run();
    const own = await (await get(await signedIn('zed@example.com'), '/connections')).text();
    const audit = await (await get(await signedIn(ADMIN), `/connections/audit?app=${encodeURIComponent(clientId)}&from=2026-12-01`)).text();
    for (const page of [own, audit]) expect(page).toMatch(/<td>Zed &#60;b&#62;Editor&#60;\/b&#62;<br><span class="muted">[^<]+<\/span><\/td>/);
  });
});

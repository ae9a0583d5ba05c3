import { reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { auditDb, auditRows, migrateAuditDb } from './fixtures/audit';
import { Gateway, gatewayEnv, mcpRequest, PAT, registerClient, signIn } from './fixtures/gateway';
import { ALICE_TOKEN, NOTES_URL, NotesUpstream, openConnections, ownTokensEnv, signInWithOwnToken, TOKEN_KEY } from './fixtures/own-tokens';

/**
 * Issue #20's last gaps: what the trail keeps of tool arguments (opt-in per upstream, never on
 * the console line), the app's name stored with each row, and resource URIs and prompt names in
 * the `tool` column.
 */

let printed: string[];
beforeEach(async () => {
  await reset();
  await migrateAuditDb();
  printed = [];
  for (const level of ['log', 'warn', 'error'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      printed.push(args.map(String).join(' '));
    });
  }
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

const VALUE = 'private-note-7f3a';
const call = (id: number, name: string, args: unknown) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const proxyRows = async () => (await auditRows()).filter((r) => r.kind === 'mcp_proxy');
const proxyLines = () => printed.filter((line) => line.includes('"event":"mcp_proxy"'));

async function callWith(audit: string | undefined, body: unknown) {
  const gateway = await Gateway.start(gatewayEnv(audit === undefined ? {} : { UPSTREAM_AUDIT: audit }));
  const { tokens } = await signIn(gateway);
  const response = await mcpRequest(gateway, tokens.access_token, body);
  expect(response.status).toBe(200);
  // The newest row: a test may call twice, under two configurations.
  const rows = await proxyRows();
  return { gateway, tokens, rows: rows.slice(-1) };
}

describe('issue #20: tool arguments in the audit trail', () => {
  it('keeps no arguments by default', async () => {
    const { rows } = await callWith(undefined, call(1, 'search', { q: VALUE, limit: 5 }));
    expect(rows).toHaveLength(1);
    expect(rows[0]?.arguments).toBeNull();
    for (const value of Object.values(rows[0] ?? {})) expect(String(value)).not.toContain(VALUE);
  });

  it('keeps only the argument names with "keys", in the order sent, and no value in any column', async () => {
    const { rows } = await callWith('{"arguments":"keys"}', call(1, 'search', { q: VALUE, limit: 5, zeta: { nested: VALUE } }));
    expect(rows[0]?.arguments).toBe('["q","limit","zeta"]');
    for (const value of Object.values(rows[0] ?? {})) {
      expect(String(value)).not.toContain(VALUE);
      expect(String(value)).not.toContain('nested');
    }
  });

  it('keeps the arguments JSON with "full", exactly as forwarded', async () => {
    // A number JSON.parse would round, sent as text: the trail holds what went upstream, digit for digit.
    const gateway = await Gateway.start(gatewayEnv({ UPSTREAM_AUDIT: '{"arguments":"full"}' }));
    const { tokens } = await signIn(gateway);
    const args = `{"q":"${VALUE}","limit":12345678901234567890}`;
    const body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":${args}}}`;
    const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${tokens.access_token}` };
    expect((await gateway.fetch('/mcp', { method: 'POST', headers, body })).status).toBe(200);
    expect((await proxyRows())[0]?.arguments).toBe(args);
  });

  it('caps "full" at 4 KiB: a larger call keeps its names, marked truncated', async () => {
    const { rows } = await callWith('{"arguments":"full"}', call(1, 'write', { path: 'a.txt', text: 'x'.repeat(5000) }));
    expect(rows[0]?.arguments).toBe('{"truncated":true,"keys":["path","text"]}');
    const wide = await callWith(
      '{"arguments":"full"}',
      call(2, 'write', { [`k${'y'.repeat(90)}`]: 1, ...Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`${'n'.repeat(90)}${i}`, 'v'])) }),
    );
    expect(wide.rows[0]?.arguments).toBe('{"truncated":true}');
  });

  it('keeps one entry per tools/call of a batch, in order, and none for other messages', async () => {
    const batch = [call(1, 'search', { q: VALUE }), { jsonrpc: '2.0', id: 2, method: 'ping' }, call(3, 'fetch', { url: 'https://x.example', depth: 1 })];
    const keys = await callWith('{"arguments":"keys"}', batch);
    expect(keys.rows[0]).toMatchObject({ tool: 'search,fetch', arguments: '[["q"],["url","depth"]]' });
    const full = await callWith('{"arguments":"full"}', batch);
    expect(JSON.parse(String(full.rows[0]?.arguments))).toEqual([{ q: VALUE }, { url: 'https://x.example', depth: 1 }]);
  });

  it.each(['none', 'keys', 'full'])('never prints an argument value or name on the console line (%s)', async (mode) => {
    await callWith(`{"arguments":"${mode}"}`, call(1, 'search', { secretive_key: VALUE }));
    const lines = proxyLines();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ event: 'mcp_proxy', tool: 'search', outcome: 'ok' });
    for (const line of printed) {
      expect(line).not.toContain(VALUE);
      expect(line).not.toContain('secretive_key');
      expect(line).not.toContain('trailOnly');
    }
  });

  it('keeps no PAT, bearer, own token or header value in any column with "full"', async () => {
    const gateway = await Gateway.start(
      ownTokensEnv({
        UPSTREAM_AUDIT: '{"arguments":"full"}',
        UPSTREAMS: JSON.stringify({ notes: { url: NOTES_URL, userSupplied: true, audit: { arguments: 'full' } } }),
      }),
    );
    new NotesUpstream().install(gateway);
    const { tokens } = await signIn(gateway);
    const header = 'hdr_SECRET_9c1b2e';
    const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${tokens.access_token}`, 'X-Api-Key': header, Cookie: `s=${header}` };
    const sent = await gateway.fetch('/mcp', { method: 'POST', headers, body: JSON.stringify(call(1, 'search', { q: VALUE })) });
    expect(sent.status).toBe(200);
    const own = await signInWithOwnToken(gateway, ALICE_TOKEN);
    await mcpRequest(gateway, own.tokens.access_token, call(2, 'list', { folder: 'inbox' }), '/notes/mcp');
    const rows = await auditRows();
    const calls = rows.filter((r) => r.kind === 'mcp_proxy');
    expect(calls.map((r) => r.arguments)).toEqual([`{"q":"${VALUE}"}`, '{"folder":"inbox"}']);
    const secrets = [PAT, ALICE_TOKEN, TOKEN_KEY, header, tokens.access_token, tokens.refresh_token, own.tokens.access_token, own.tokens.refresh_token];
    for (const row of rows) for (const value of Object.values(row)) for (const secret of secrets) expect(String(value)).not.toContain(secret);
  });
});

describe('issue #20: the app name stored with each row', () => {
  it("stores the app's registered name with its calls and its sign-in, from the grant, capped and on one line", async () => {
    const gateway = await Gateway.start();
    const client = await registerClient(gateway, { client_name: `Zed\nEditor ${'z'.repeat(200)}` });
    const { tokens } = await signIn(gateway, { client });
    // The registry is not asked again per request: the name came with the token.
    await mcpRequest(gateway, tokens.access_token);
    const rows = await auditRows();
    const name = `Zed Editor ${'z'.repeat(89)}`;
    expect(rows.find((r) => r.kind === 'sign_in')).toMatchObject({ client_id: client.clientId, client_name: name });
    expect(rows.find((r) => r.kind === 'mcp_proxy')).toMatchObject({ client_id: client.clientId, client_name: name });
    // The console lines stay as they were: no app name on them.
    expect(printed.filter((line) => line.includes('"event":"mcp_proxy"') || line.includes('"event":"sign_in"')).join('\n')).not.toContain('Zed');
  });

  it('still names the app on the pages for a row stored without a name, from the registry', async () => {
    const gateway = await Gateway.start(gatewayEnv({ ADMIN_EMAILS: 'admin@example.com' }));
    const { clientId } = await registerClient(gateway, { client_name: 'Old <i>Grant</i> App' });
    await auditDb
      .prepare(
        "INSERT INTO audit_events (time, kind, email, client_id, upstream, rpc_method, tool, outcome, status) VALUES (?, 'mcp_proxy', 'alice@example.com', ?, 'mcp', 'tools/call', 'search', 'ok', 200)",
      )
      .bind(Date.now() - 1000, clientId)
      .run();
    const page = await (await openConnections(gateway, { email: 'alice@example.com' })).page.text();
    expect(page).toMatch(/<td>Old &#60;i&#62;Grant&#60;\/i&#62; App<br><span class="muted">[^<]+<\/span><\/td>/);
  });
});

describe('issue #20: resources and prompts in the tool column', () => {
  it('stores the URI of resources/read and resources/subscribe and the name of prompts/get', async () => {
    const gateway = await Gateway.start();
    const { tokens } = await signIn(gateway);
    await mcpRequest(gateway, tokens.access_token, { jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'file:///notes/today.md' } });
    await mcpRequest(gateway, tokens.access_token, { jsonrpc: '2.0', id: 2, method: 'resources/subscribe', params: { uri: 'file:///notes/' } });
    await mcpRequest(gateway, tokens.access_token, {
      jsonrpc: '2.0',
      id: 3,
      method: 'prompts/get',
      params: { name: 'summarize', arguments: { style: 'brief' } },
    });
    await mcpRequest(gateway, tokens.access_token, [
      call(4, 'search', { q: 'x' }),
      { jsonrpc: '2.0', id: 5, method: 'resources/read', params: { uri: 'file:///a <b>' } },
      { jsonrpc: '2.0', id: 6, method: 'prompts/get', params: { name: 'draft' } },
    ]);
    const rows = await proxyRows();
    expect(rows.map((r) => [r.rpc_method, r.tool])).toEqual([
      ['resources/read', 'file:///notes/today.md'],
      ['resources/subscribe', 'file:///notes/'],
      ['prompts/get', 'summarize'],
      ['tools/call,resources/read,prompts/get', 'search,file:///a??b?,draft'],
    ]);
    // The log line names them too, each in its own field; `tool` stays tools only.
    const lines = proxyLines().map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ resource: 'file:///notes/today.md' });
    expect(lines[0]?.tool).toBeUndefined();
    expect(lines[2]).toMatchObject({ prompt: 'summarize' });
    expect(lines[3]).toMatchObject({ tool: 'search', resource: 'file:///a??b?', prompt: 'draft' });
  });

  it("finds resources and prompts with the admin page's tool filter", async () => {
    const gateway = await Gateway.start(gatewayEnv({ ADMIN_EMAILS: 'admin@example.com' }));
    const { tokens } = await signIn(gateway);
    await mcpRequest(gateway, tokens.access_token, { jsonrpc: '2.0', id: 1, method: 'resources/read', params: { uri: 'file:///notes/today.md' } });
    await mcpRequest(gateway, tokens.access_token, { jsonrpc: '2.0', id: 2, method: 'prompts/get', params: { name: 'summarize' } });
    const { browser } = await openConnections(gateway, { email: 'admin@example.com' });
    for (const name of ['file:///notes/today.md', 'summarize']) {
      const page = await (await gateway.fetch(`/connections/audit?tool=${encodeURIComponent(name)}`, { headers: browser.headers() })).text();
      const events = page.split('<h2>Events</h2>')[1] ?? '';
      expect(events.match(/<tr><td>/g)?.length, name).toBe(1);
      expect(events, name).toContain(`<code>${name}</code>`);
    }
  });
});

describe('issue #20: arguments on the pages and in the export', () => {
  it('shows the stored arguments, escaped, on /connections and /connections/audit, and exports them', async () => {
    const gateway = await Gateway.start(gatewayEnv({ ADMIN_EMAILS: 'admin@example.com', UPSTREAM_AUDIT: '{"arguments":"full"}' }));
    const { tokens } = await signIn(gateway);
    await mcpRequest(gateway, tokens.access_token, call(1, 'search', { q: '<script>alert(1)</script>' }));
    const own = await openConnections(gateway, { email: 'alice@example.com' });
    const mine = await (await gateway.fetch('/connections', { headers: own.browser.headers() })).text();
    const admin = await openConnections(gateway, { email: 'admin@example.com' });
    const audit = await (await gateway.fetch('/connections/audit?tool=search', { headers: admin.browser.headers() })).text();
    for (const page of [mine, audit]) {
      expect(page).toContain('{&#34;q&#34;:&#34;&#60;script&#62;alert(1)&#60;/script&#62;&#34;}');
      expect(page).not.toContain('<script>');
    }
    const jsonl = await (await gateway.fetch('/connections/audit?tool=search&format=jsonl', { headers: admin.browser.headers() })).text();
    expect(JSON.parse(jsonl.trim()).arguments).toBe('{"q":"<script>alert(1)</script>"}');
  });
});

describe('issue #20: a trail that cannot be read', () => {
  it('says so on the pages and logs one audit_read_failed line, without the error failing the page', async () => {
    const gateway = await Gateway.start(gatewayEnv({ ADMIN_EMAILS: 'admin@example.com' }));
    const { browser, page } = await openConnections(gateway, { email: 'admin@example.com' });
    await auditDb.exec('DROP TABLE audit_events');
    const own = await gateway.fetch('/connections', { headers: browser.headers() });
    const audit = await gateway.fetch('/connections/audit', { headers: browser.headers() });
    expect(page.status).toBe(200);
    for (const response of [own, audit]) {
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('could not be read just now');
    }
    const failures = printed.filter((line) => line.includes('"audit_read_failed"')).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(failures).toHaveLength(2);
    expect(failures[0]).toMatchObject({ event: 'audit_read_failed', error: expect.stringContaining('no such table') });
  });
});

import { createExecutionContext, createScheduledController, reset, waitOnExecutionContext } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import worker from '../src/index';
import { auditDb, auditRows, migrateAuditDb, seedRows } from './fixtures/audit';
import { Gateway, gatewayEnv, mcpRequest, PAT, signIn } from './fixtures/gateway';
import { ALICE_TOKEN, NotesUpstream, ownTokensEnv, signInWithOwnToken } from './fixtures/own-tokens';

let warn: ReturnType<typeof vi.spyOn>;
beforeEach(async () => {
  await reset();
  vi.spyOn(console, 'log').mockImplementation(() => {});
  warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

const kinds = (rows: Record<string, unknown>[]) => rows.map((r) => r.kind);

describe('issue #20: the audit trail store', () => {
  beforeEach(migrateAuditDb);

  it('stores an MCP call with who, which app, which upstream, method, tool, outcome, statuses and duration', async () => {
    const gateway = await Gateway.start();
    const { client, tokens } = await signIn(gateway);
    const before = Date.now();
    const response = await mcpRequest(gateway, tokens.access_token, {
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'search', arguments: { q: 'x' } },
    });
    expect(response.status).toBe(200);

    const call = (await auditRows()).find((r) => r.kind === 'mcp_proxy');
    expect(call).toMatchObject({
      email: 'alice@example.com',
      client_id: client.clientId,
      upstream: 'mcp',
      rpc_method: 'tools/call',
      tool: 'search',
      outcome: 'ok',
      status: 200,
      upstream_status: 200,
      arguments: null,
    });
    expect(call?.time).toBeGreaterThanOrEqual(before - 1);
    expect(typeof call?.duration_ms).toBe('number');
  });

  it('stores a sign-in and a consent for an MCP login', async () => {
    const gateway = await Gateway.start();
    const { client } = await signIn(gateway);
    const rows = await auditRows();
    expect(kinds(rows)).toEqual(expect.arrayContaining(['consent_approved', 'sign_in']));
    expect(rows.find((r) => r.kind === 'sign_in')).toMatchObject({
      email: 'alice@example.com',
      actor: 'alice@example.com',
      client_id: client.clientId,
      upstream: 'mcp',
      outcome: 'ok',
    });
    expect(rows.find((r) => r.kind === 'consent_approved')).toMatchObject({ client_id: client.clientId, upstream: 'mcp' });
  });

  it('maps a refused request to the trail outcome not_allowed', async () => {
    const gateway = await Gateway.start();
    const { tokens } = await signIn(gateway);
    const response = await mcpRequest(gateway, tokens.access_token, { jsonrpc: '1.0', id: 1 });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect((await auditRows()).find((r) => r.kind === 'mcp_proxy')).toMatchObject({ outcome: 'not_allowed', status: response.status });
  });

  it('stores an own token saved, with actor and subject', async () => {
    const gateway = await Gateway.start(ownTokensEnv());
    new NotesUpstream().install(gateway);
    await signInWithOwnToken(gateway, ALICE_TOKEN);
    expect((await auditRows()).find((r) => r.kind === 'own_token_saved')).toMatchObject({
      email: 'alice@example.com',
      actor: 'alice@example.com',
      upstream: 'notes',
    });
  });

  it('keeps no PAT, bearer, refresh token, client secret or own token in any column of any row', async () => {
    const gateway = await Gateway.start(ownTokensEnv());
    new NotesUpstream().install(gateway);
    const { tokens } = await signIn(gateway);
    await mcpRequest(gateway, tokens.access_token, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', arguments: { secret: PAT } } });
    const own = await signInWithOwnToken(gateway, ALICE_TOKEN);
    await mcpRequest(gateway, own.tokens.access_token, { jsonrpc: '2.0', id: 2, method: 'ping' }, '/notes/mcp');
    const rows = await auditRows();
    expect(rows.length).toBeGreaterThanOrEqual(6);
    const secrets = [
      PAT,
      ALICE_TOKEN,
      tokens.access_token,
      tokens.refresh_token,
      own.tokens.access_token,
      own.tokens.refresh_token,
      gateway.env.ACCESS_CLIENT_SECRET,
      gateway.env.COOKIE_ENCRYPTION_KEY,
    ].filter((s): s is string => typeof s === 'string' && s.length > 0);
    for (const row of rows) {
      for (const value of Object.values(row)) {
        for (const secret of secrets) expect(String(value)).not.toContain(secret);
      }
    }
  });

  it('loses only the trail, never the response, when the database fails', async () => {
    const gateway = await Gateway.start();
    const { tokens } = await signIn(gateway);
    await auditDb.exec('DROP TABLE audit_events');
    const response = await mcpRequest(gateway, tokens.access_token);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
    const lines = warn.mock.calls.map((c: unknown[]) => String(c[0]));
    expect(lines.some((l: string) => l.includes('"audit_write_failed"'))).toBe(true);
    expect(lines.join('\n')).not.toContain(tokens.access_token);
  });
});

describe('issue #20: retention and the size guard', () => {
  beforeEach(migrateAuditDb);

  async function runCron(env: Env): Promise<void> {
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: '23 * * * *' }), env, ctx);
    await waitOnExecutionContext(ctx);
  }

  it('drops rows older than AUDIT_RETENTION_DAYS at the hourly cron and keeps newer ones', async () => {
    const day = 86_400_000;
    const now = Date.now();
    await seedRows(10, now - 10 * day, 60_000); // ten rows ten days old
    await seedRows(5, now, 60_000);
    await runCron(gatewayEnv({ AUDIT_RETENTION_DAYS: '7' }));
    const rows = await auditRows();
    expect(rows).toHaveLength(5);
    expect(rows.every((r) => Number(r.time) > now - 7 * day)).toBe(true);
  });

  it('keeps at most AUDIT_MAX_ROWS rows, dropping the oldest first', async () => {
    const now = Date.now();
    await seedRows(1_500, now, 1_000);
    await runCron(gatewayEnv({ AUDIT_MAX_ROWS: '1000' }));
    const rows = await auditRows();
    expect(rows).toHaveLength(1_000);
    expect(Math.max(...rows.map((r) => Number(r.time)))).toBe(now);
    expect(Math.min(...rows.map((r) => Number(r.time)))).toBe(now - 999 * 1_000);
  });
});

describe('issue #20: /health names the trail', () => {
  const health = async (gateway: Gateway) => {
    const response = await gateway.fetch('/health');
    return { status: response.status, body: await response.json<Record<string, unknown>>() };
  };

  it('says "on" with the schema applied', async () => {
    await migrateAuditDb();
    expect(await health(await Gateway.start())).toEqual({ status: 200, body: { ok: true, audit: 'on' } });
  });

  it('says "off" without the AUDIT_DB binding, and MCP still works', async () => {
    const gateway = await Gateway.start(gatewayEnv({ AUDIT_DB: undefined }));
    expect(await health(gateway)).toEqual({ status: 200, body: { ok: true, audit: 'off' } });
    const { tokens } = await signIn(gateway);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
  });

  it('says "missing" when the migrations were never applied, without failing ok or MCP', async () => {
    const gateway = await Gateway.start();
    expect(await health(gateway)).toEqual({ status: 200, body: { ok: true, audit: 'missing' } });
    const { tokens } = await signIn(gateway);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
  });

  it('says "behind" when the schema is older than the code', async () => {
    await migrateAuditDb();
    await auditDb.exec('UPDATE audit_schema SET version = 0');
    expect(await health(await Gateway.start())).toEqual({ status: 200, body: { ok: true, audit: 'behind' } });
  });
});

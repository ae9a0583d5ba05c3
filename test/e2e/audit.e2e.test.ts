/**
 * Issue #20: the audit trail through `npm start`: the stack applies the migrations to the local
 * D1 itself, and an SDK client's session leaves its calls in it, with no token in any column.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectWithOAuth } from './support/mcp-client';
import { type E2EStack, startE2EStack } from './support/stack';

const REPO = join(dirname(new URL(import.meta.url).pathname), '..', '..');
const WRANGLER = join(dirname(createRequire(import.meta.url).resolve('wrangler/package.json')), 'bin', 'wrangler.js');

let stack: E2EStack;
let stateDir: string;
beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'mcp-gateway-e2e-audit-'));
  stack = await startE2EStack({ stateDir });
});
afterAll(async () => {
  await stack?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

/** Every row of the trail, read from the gateway's local D1 with wrangler, as an operator would. */
async function trailRows(): Promise<Record<string, unknown>[]> {
  return localD1('SELECT * FROM audit_events ORDER BY id');
}

/** One SQL command against the gateway's local D1, through wrangler. */
async function localD1(command: string): Promise<Record<string, unknown>[]> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      WRANGLER,
      'd1',
      'execute',
      'AUDIT_DB',
      '--local',
      '--config',
      join(REPO, 'wrangler.jsonc'),
      '--persist-to',
      join(stateDir, 'gateway'),
      '--json',
      '--command',
      command,
    ],
    { cwd: REPO, env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false' } },
  );
  const [result] = JSON.parse(stdout) as { results: Record<string, unknown>[] }[];
  return result?.results ?? [];
}

describe('issue #20: the audit trail through npm start', () => {
  it('has its schema applied: /health says the trail is on', async () => {
    const response = await fetch(stack.urls.health);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, audit: 'on' });
  });

  it("keeps the SDK client's sign-in and tool call, and no token in any column", async () => {
    const { client, transport, provider } = await connectWithOAuth(stack.urls.mcp);
    const result = await client.callTool({ name: 'list_boards', arguments: {} });
    expect(result.isError).toBeFalsy();
    await transport.terminateSession();
    await client.close();

    const rows = await trailRows();
    const clientId = provider.client?.client_id;
    expect(rows).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'sign_in', client_id: clientId, upstream: 'mcp' }),
        expect.objectContaining({ kind: 'mcp_proxy', client_id: clientId, rpc_method: 'tools/call', tool: 'list_boards', outcome: 'ok', status: 200 }),
      ]),
    );
    const secrets = [stack.upstreamToken, provider.savedTokens?.access_token, provider.savedTokens?.refresh_token].filter((s): s is string => !!s);
    expect(secrets.length).toBe(3);
    const text = JSON.stringify(rows);
    for (const secret of secrets) expect(text).not.toContain(secret);
  });

  it('names a trail whose schema is missing on /health and in the doctor, and still serves MCP', async () => {
    await localD1('DROP TABLE audit_schema');
    const health = await fetch(stack.urls.health);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, audit: 'missing' });

    const { client, transport } = await connectWithOAuth(stack.urls.mcp);
    expect((await client.callTool({ name: 'list_boards', arguments: {} })).isError).toBeFalsy();
    await transport.terminateSession();
    await client.close();

    const doctor = await promisify(execFile)(
      process.execPath,
      ['--experimental-transform-types', '--disable-warning=ExperimentalWarning', join(REPO, 'scripts/doctor.mjs'), '--url', stack.urls.gateway],
      { cwd: REPO },
    ).then(
      () => ({ code: 0, output: '' }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, output: `${error.stdout}${error.stderr}` }),
    );
    expect(doctor.code).toBe(1);
    expect(doctor.output).toMatch(/audit trail's database is missing its tables.*wrangler d1 migrations apply AUDIT_DB --remote/);
  });
});

import { createExecutionContext, createScheduledController, env, reset, waitOnExecutionContext } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import worker from '../src/index';
import { PURGE_BATCH_SIZE, PURGE_CALLS_PER_RUN } from '../src/purge';
import { Gateway, mcpRequest, signIn } from './fixtures/gateway';

let gateway: Gateway;
beforeEach(async () => {
  await reset();
  gateway = await Gateway.start();
  vi.spyOn(console, 'log').mockImplementation(() => {});
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});

async function runCron(): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ cron: '23 * * * *' }), gateway.env, ctx);
  await waitOnExecutionContext(ctx);
}

/** A grant record as the library stores it, already expired, with one token under it. */
async function putExpiredGrant(userId: string, grantId: string, clientId: string): Promise<void> {
  const past = Math.floor(Date.now() / 1000) - 3600;
  await env.OAUTH_KV.put(
    `grant:${userId}:${grantId}`,
    JSON.stringify({ id: grantId, clientId, userId, scope: ['mcp'], metadata: {}, encryptedProps: '', createdAt: past - 60, expiresAt: past }),
  );
  await env.OAUTH_KV.put(
    `token:${userId}:${grantId}:${'a'.repeat(64)}`,
    JSON.stringify({ id: 'a'.repeat(64), grantId, userId, createdAt: past - 60, expiresAt: past }),
  );
}

const keys = async (prefix: string) => (await env.OAUTH_KV.list({ prefix })).keys.map((k) => k.name);

describe('the scheduled purge', () => {
  it('removes expired grants with their tokens, and orphaned tokens, and keeps what is live', async () => {
    const { client, tokens } = await signIn(gateway);
    const liveGrants = await keys('grant:');
    const liveTokens = await keys('token:');
    expect(liveGrants).toHaveLength(1);
    await putExpiredGrant('bob@example.com', 'expiredGrant0001', client.clientId);
    await env.OAUTH_KV.put(
      `token:carol@example.com:goneGrant0000001:${'b'.repeat(64)}`,
      JSON.stringify({ userId: 'carol@example.com', grantId: 'goneGrant0000001' }),
    );

    await runCron();

    expect(await keys('grant:')).toEqual(liveGrants);
    expect(await keys('token:')).toEqual(liveTokens);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
  });

  it('resumes an unfinished sweep from its stored cursor at the next run', async () => {
    const { client } = await signIn(gateway);
    const expired = PURGE_BATCH_SIZE * PURGE_CALLS_PER_RUN + 20;
    for (let i = 0; i < expired; i++) await putExpiredGrant('bob@example.com', `expired${String(i).padStart(9, '0')}`, client.clientId);

    await runCron();
    const left = (await keys('grant:bob@example.com:')).length;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(expired);
    expect(await env.OAUTH_KV.get('gateway:purge-cursor')).not.toBeNull();

    await runCron();
    expect(await keys('grant:bob@example.com:')).toEqual([]);
    expect(await keys('token:bob@example.com:')).toEqual([]);
    expect(await keys('grant:')).toHaveLength(1);
    // Done: the next run starts a new sweep.
    expect(await env.OAUTH_KV.get('gateway:purge-cursor')).toBeNull();
  });
});

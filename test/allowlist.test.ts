import { reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Gateway, gatewayEnv, mcpRequest, signIn, tokenRequest } from './fixtures/gateway';

let gateway: Gateway;
beforeEach(async () => {
  await reset();
  gateway = await Gateway.start(gatewayEnv({ ALLOWED_EMAILS: 'alice@example.com,bob@example.com' }));
});
afterEach(() => {
  vi.unstubAllGlobals();
});

describe('removing someone from ALLOWED_EMAILS', () => {
  it('stops the tokens they already hold at their next request and next refresh', async () => {
    const { client, tokens } = await signIn(gateway, { login: { email: 'alice@example.com' } });
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);

    gateway.env = gatewayEnv({ ALLOWED_EMAILS: 'bob@example.com' });
    const request = await mcpRequest(gateway, tokens.access_token, { jsonrpc: '2.0', id: 7, method: 'tools/list' });
    expect(request.status).toBe(403);
    expect(request.headers.get('WWW-Authenticate')).toBeNull();
    expect(await request.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32001 } });

    const refresh = await tokenRequest(gateway, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.clientId });
    expect(refresh.status).toBe(400);
    expect(await refresh.json()).toMatchObject({ error: 'invalid_grant' });

    // The refused refresh revoked the grant: adding them back does not revive old tokens.
    gateway.env = gatewayEnv({ ALLOWED_EMAILS: 'alice@example.com' });
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(401);
  });

  it('leaves everyone still listed working', async () => {
    const bob = await signIn(gateway, { login: { email: 'bob@example.com' } });
    gateway.env = gatewayEnv({ ALLOWED_EMAILS: 'bob@example.com' });
    expect((await mcpRequest(gateway, bob.tokens.access_token)).status).toBe(200);
    const refresh = await tokenRequest(gateway, { grant_type: 'refresh_token', refresh_token: bob.tokens.refresh_token, client_id: bob.client.clientId });
    expect(refresh.status).toBe(200);
  });
});

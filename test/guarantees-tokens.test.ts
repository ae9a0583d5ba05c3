import { reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Gateway, gatewayEnv, mcpRequest, PAT, signIn, type TestClient, tokenRequest, UPSTREAM_URL } from './fixtures/gateway';

let gateway: Gateway;
let upstream: (string | null)[];
beforeEach(async () => {
  await reset();
  gateway = await Gateway.start();
  upstream = [];
  gateway.routes.set(UPSTREAM_URL, (request) => {
    upstream.push(request.headers.get('Authorization'));
    return Response.json({ jsonrpc: '2.0', id: 1, result: {} });
  });
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'warn').mockImplementation(() => {});
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

/** Moves the Worker's clock (the provider checks expiry against `Date.now()`) `seconds` past `from`. */
function clockAt(from: number, seconds: number) {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(from + seconds * 1000);
}

function refresh(client: TestClient, refreshToken: string) {
  return tokenRequest(gateway, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: client.clientId });
}

describe('rotating the upstream token', () => {
  it('takes effect for existing grants at the next request', async () => {
    const { tokens } = await signIn(gateway);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    gateway.env = gatewayEnv({ UPSTREAM_TOKEN: 'pat_SECRET_rotated_11aa22bb' });
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    gateway.env = gatewayEnv({ USER_TOKENS: JSON.stringify({ 'alice@example.com': 'pat_SECRET_alice_33cc44dd' }) });
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    expect(upstream).toEqual([`Bearer ${PAT}`, 'Bearer pat_SECRET_rotated_11aa22bb', 'Bearer pat_SECRET_alice_33cc44dd']);
  });
});

describe('rotating COOKIE_ENCRYPTION_KEY', () => {
  it('leaves access and refresh tokens working', async () => {
    const { client, tokens } = await signIn(gateway);
    gateway.env = gatewayEnv({ COOKIE_ENCRYPTION_KEY: 'rotated-cookie-key-fedcba9876543210fedcba' });
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    const refreshed = await refresh(client, tokens.refresh_token);
    expect(refreshed.status).toBe(200);
    expect((await mcpRequest(gateway, (await refreshed.json<{ access_token: string }>()).access_token)).status).toBe(200);
  });
});

describe('ACCESS_TOKEN_TTL', () => {
  it('is one day by default', async () => {
    const { tokens } = await signIn(gateway);
    expect(tokens.expires_in).toBe(86_400);
  });

  it('sets expires_in, and the token gets 401 once it has passed', async () => {
    gateway.env = gatewayEnv({ ACCESS_TOKEN_TTL: '120' });
    const issued = Date.now();
    const { client, tokens } = await signIn(gateway);
    expect(tokens.expires_in).toBe(120);

    clockAt(issued, 110);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    clockAt(issued, 125);
    const expired = await mcpRequest(gateway, tokens.access_token);
    expect(expired.status).toBe(401);
    expect(expired.headers.get('WWW-Authenticate')).toMatch(/^Bearer /);
    expect(upstream).toHaveLength(1);

    // A refresh brings a working token of the same lifetime.
    const refreshed = await refresh(client, tokens.refresh_token);
    expect(refreshed.status).toBe(200);
    const next = await refreshed.json<{ access_token: string; expires_in: number }>();
    expect(next.expires_in).toBe(120);
    expect((await mcpRequest(gateway, next.access_token)).status).toBe(200);
  });
});

describe('REFRESH_TOKEN_TTL', () => {
  it('refuses a refresh token left unused for longer than it', async () => {
    gateway.env = gatewayEnv({ REFRESH_TOKEN_TTL: '300' });
    const issued = Date.now();
    const { client, tokens } = await signIn(gateway);
    clockAt(issued, 310);
    const refused = await refresh(client, tokens.refresh_token);
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('is renewed by each refresh, so a client that keeps refreshing keeps its grant', async () => {
    gateway.env = gatewayEnv({ REFRESH_TOKEN_TTL: '300' });
    const issued = Date.now();
    const { client, tokens } = await signIn(gateway);
    let refreshToken = tokens.refresh_token;
    // Four refreshes 200 s apart: 800 s in all, well past one lifetime from the sign-in.
    for (const at of [200, 400, 600, 800]) {
      clockAt(issued, at);
      const refreshed = await refresh(client, refreshToken);
      expect(refreshed.status, `refresh at ${at} s`).toBe(200);
      refreshToken = (await refreshed.json<{ refresh_token: string }>()).refresh_token;
    }
    clockAt(issued, 800 + 310);
    expect((await refresh(client, refreshToken)).status).toBe(400);
  });
});

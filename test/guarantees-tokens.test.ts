import { reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  Gateway,
  gatewayEnv,
  mcpRequest,
  PAT,
  registerClient,
  signIn,
  type TestClient,
  type TokenResponse,
  tokenRequest,
  UPSTREAM_URL,
} from './fixtures/gateway';
import { grantFromBeforeTheUpgrade, oauthHelpers } from './fixtures/helpers-api';

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

describe('issue #16: MAX_GRANT_AGE ends a grant, counted from its Access sign-in', () => {
  /** Stops the Worker's clock now, so a sign-in's time is exactly the returned moment. */
  function frozenNow(): number {
    vi.useFakeTimers({ toFake: ['Date'] });
    const now = Date.now();
    vi.setSystemTime(now);
    return now;
  }

  async function expectInvalidGrant(response: Response) {
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_grant' });
  }

  it('refuses the refresh of a grant older than MAX_GRANT_AGE, however often it refreshed, and its last token stops', async () => {
    gateway.env = gatewayEnv({ MAX_GRANT_AGE: '3600', REFRESH_TOKEN_TTL: '900' });
    const signedIn = frozenNow();
    const { client, tokens } = await signIn(gateway);
    let current = tokens;
    // Each refresh well inside REFRESH_TOKEN_TTL of the last: only the grant's age can end it.
    for (const at of [800, 1600, 2400, 3200]) {
      clockAt(signedIn, at);
      const refreshed = await refresh(client, current.refresh_token);
      expect(refreshed.status, `refresh at ${at} s`).toBe(200);
      current = await refreshed.json<TokenResponse>();
    }
    expect((await mcpRequest(gateway, current.access_token)).status).toBe(200);
    clockAt(signedIn, 3601);
    await expectInvalidGrant(await refresh(client, current.refresh_token));
    expect((await mcpRequest(gateway, current.access_token)).status).toBe(401);
  });

  it('still refreshes a grant just under MAX_GRANT_AGE, with tokens that end at the limit', async () => {
    gateway.env = gatewayEnv({ MAX_GRANT_AGE: '3600' });
    const signedIn = frozenNow();
    const { client, tokens } = await signIn(gateway);
    clockAt(signedIn, 3480);
    const refreshed = await refresh(client, tokens.refresh_token);
    expect(refreshed.status).toBe(200);
    const next = await refreshed.json<TokenResponse>();
    expect(next.expires_in).toBe(120);
    clockAt(signedIn, 3590);
    expect((await mcpRequest(gateway, next.access_token)).status).toBe(200);
    clockAt(signedIn, 3600);
    expect((await mcpRequest(gateway, next.access_token)).status).toBe(401);
    await expectInvalidGrant(await refresh(client, next.refresh_token));
  });

  it('gives a new sign-in tokens that end at MAX_GRANT_AGE when that is shorter than their lifetimes', async () => {
    gateway.env = gatewayEnv({ MAX_GRANT_AGE: '3600', REFRESH_TOKEN_TTL: '7200' });
    const signedIn = frozenNow();
    const { tokens } = await signIn(gateway);
    expect(tokens.expires_in).toBe(3600);
    // The refresh token too: the grant expires (and KV drops it) at the limit, not REFRESH_TOKEN_TTL later.
    const { items } = await oauthHelpers().listUserGrants('alice@example.com');
    expect(items.map((grant) => grant.expiresAt)).toEqual([Math.floor(signedIn / 1000) + 3600]);
  });

  it('is 30 days by default', async () => {
    const signedIn = frozenNow();
    const { client, tokens } = await signIn(gateway);
    const days = 86_400;
    clockAt(signedIn, 29 * days);
    const refreshed = await refresh(client, tokens.refresh_token);
    expect(refreshed.status).toBe(200);
    const next = await refreshed.json<TokenResponse>();
    // One day left: the new access token (a day by default) ends exactly at the limit.
    expect(next.expires_in).toBe(days);
    clockAt(signedIn, 30 * days + 1);
    await expectInvalidGrant(await refresh(client, next.refresh_token));
  });

  it('ends a grant at its next refresh once MAX_GRANT_AGE is lowered below its age, and its access token stops at once', async () => {
    gateway.env = gatewayEnv({ ACCESS_TOKEN_TTL: '2592000' });
    const signedIn = frozenNow();
    const { client, tokens } = await signIn(gateway);
    clockAt(signedIn, 8 * 86_400);
    gateway.env = gatewayEnv({ ACCESS_TOKEN_TTL: '2592000', MAX_GRANT_AGE: String(7 * 86_400) });
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    await expectInvalidGrant(await refresh(client, tokens.refresh_token));
    // The library revoked the grant, and this isolate forgot the token it had just validated.
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(401);
  });

  it('counts a grant made before the upgrade from its first refresh, stamping it then', async () => {
    gateway.env = gatewayEnv({ MAX_GRANT_AGE: '3600' });
    const client = await registerClient(gateway);
    const before = await grantFromBeforeTheUpgrade(client);
    expect((await oauthHelpers().unwrapToken(before.access_token))?.grant.props).toStrictEqual({ email: 'alice@example.com', sub: 'sub-alice' });

    const upgraded = frozenNow();
    const first = await refresh(client, before.refresh_token);
    expect(first.status).toBe(200);
    const stamped = await first.json<TokenResponse>();
    expect((await oauthHelpers().unwrapToken(stamped.access_token))?.grant.props).toStrictEqual({
      email: 'alice@example.com',
      sub: 'sub-alice',
      signedInAt: Math.floor(upgraded / 1000),
    });
    expect((await mcpRequest(gateway, stamped.access_token)).status).toBe(200);

    clockAt(upgraded, 3000);
    const second = await refresh(client, stamped.refresh_token);
    expect(second.status).toBe(200);
    const later = await second.json<TokenResponse>();
    expect(later.expires_in).toBe(600);
    clockAt(upgraded, 3601);
    await expectInvalidGrant(await refresh(client, later.refresh_token));
  });
});

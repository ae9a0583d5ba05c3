import { reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Identity } from '../src/identity';
import { Gateway, gatewayEnv, mcpRequest, type SignedIn, signIn, storedGrants, type TokenResponse, tokenRequest } from './fixtures/gateway';
import { oauthHelpers } from './fixtures/helpers-api';

let gateway: Gateway;
beforeEach(async () => {
  await reset();
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'warn').mockImplementation(() => {});
  gateway = await Gateway.start();
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

function refresh(gateway: Gateway, { client }: SignedIn, refreshToken: string): Promise<Response> {
  return tokenRequest(gateway, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: client.clientId });
}

/** Who the MCP handler sees behind an access token: the props the library decrypts with it. */
async function identityBehind(accessToken: string): Promise<Identity | undefined> {
  return (await oauthHelpers().unwrapToken<Identity>(accessToken))?.grant.props;
}

function accessTokenRefreshes(gateway: Gateway): number {
  return gateway.access.requests.filter((line) => line.endsWith('/token')).length;
}

describe('issue #19: re-validation with Access at each refresh', () => {
  it('carries the email and groups Access gives at the refresh in the next access token', async () => {
    const alice = await signIn(gateway, { login: { email: 'alice@example.com', refreshToken: true, claims: { groups: ['writers'] } } });

    gateway.access.changePerson({ email: 'alice@example.com', claims: { groups: ['readers'] } });
    const first = await refresh(gateway, alice, alice.tokens.refresh_token);
    expect(first.status).toBe(200);
    const firstTokens = await first.json<TokenResponse>();
    expect(await identityBehind(firstTokens.access_token)).toMatchObject({ email: 'alice@example.com', groups: ['readers'] });

    gateway.access.changePerson({ email: 'Alice.Liddell@Example.com', claims: { groups: ['readers', 'maintainers'] } });
    const second = await refresh(gateway, alice, firstTokens.refresh_token);
    expect(second.status).toBe(200);
    const secondTokens = await second.json<TokenResponse>();
    expect(await identityBehind(secondTokens.access_token)).toMatchObject({
      email: 'alice.liddell@example.com',
      sub: 'sub-alice@example.com',
      groups: ['readers', 'maintainers'],
    });
    expect((await mcpRequest(gateway, secondTokens.access_token)).status).toBe(200);
  });

  it('takes the write tools from someone moved out of the writers group at the next refresh, not before', async () => {
    gateway.env = gatewayEnv({
      ACCESS_SCOPES: 'openid email profile groups',
      UPSTREAM_TOOLS: JSON.stringify({ deny: ['write_*'] }),
      UPSTREAM_TOOLS_FOR: JSON.stringify({ 'group:writers': {} }),
    });
    const call = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'write_file', arguments: {} } };
    const refused = async (token: string) => {
      const response = await mcpRequest(gateway, token, call);
      const body = await response.json<{ error?: { code: number } }>();
      return body.error?.code === -32602;
    };
    const alice = await signIn(gateway, { login: { email: 'alice@example.com', refreshToken: true, groups: ['writers'] } });
    expect(await refused(alice.tokens.access_token)).toBe(false);

    // Moved out in the IdP: the access token she holds still says writers until the client refreshes.
    gateway.access.changePerson({ email: 'alice@example.com', groups: [] });
    expect(await refused(alice.tokens.access_token)).toBe(false);

    const response = await refresh(gateway, alice, alice.tokens.refresh_token);
    expect(response.status).toBe(200);
    const { access_token } = await response.json<TokenResponse>();
    expect(await refused(access_token)).toBe(true);
  });

  it('checks the allowlist against the identity Access gives at the refresh', async () => {
    gateway.env = gatewayEnv({ ALLOWED_EMAILS: 'alice@example.com' });
    const alice = await signIn(gateway, { login: { email: 'alice@example.com', refreshToken: true } });
    gateway.access.changePerson({ email: 'alice@elsewhere.example' });

    const refused = await refresh(gateway, alice, alice.tokens.refresh_token);
    expect(refused.status).toBe(400);
    expect((await refused.json<{ error: string }>()).error).toBe('invalid_grant');
    expect((await mcpRequest(gateway, alice.tokens.access_token)).status).toBe(401);
  });

  it('keeps the identity when Access refreshes without an ID token', async () => {
    const alice = await signIn(gateway, { login: { email: 'alice@example.com', refreshToken: true, claims: { groups: ['writers'] } } });
    gateway.access.changePerson({ email: 'mallory@example.com' }, { idToken: false });

    const response = await refresh(gateway, alice, alice.tokens.refresh_token);
    expect(response.status).toBe(200);
    expect(await identityBehind((await response.json<TokenResponse>()).access_token)).toMatchObject({ email: 'alice@example.com' });
  });

  it('ends the grant when Access refuses the refresh: the refresh fails with invalid_grant and the tokens stop', async () => {
    const alice = await signIn(gateway, { login: { refreshToken: true } });
    expect((await mcpRequest(gateway, alice.tokens.access_token)).status).toBe(200);
    gateway.access.revokeRefreshTokens();

    const refused = await refresh(gateway, alice, alice.tokens.refresh_token);
    expect(refused.status).toBe(400);
    expect((await refused.json<{ error: string }>()).error).toBe('invalid_grant');
    expect((await mcpRequest(gateway, alice.tokens.access_token)).status).toBe(401);
    expect(await storedGrants()).toBe(0);
    expect((await refresh(gateway, alice, alice.tokens.refresh_token)).status).toBe(400);
  });

  for (const [what, person] of [
    ['names another subject', { claims: { sub: 'sub-mallory' } }],
    ['carries a malformed groups claim', { claims: { groups: 'writers' } }],
  ] as const) {
    it(`ends the grant when the refreshed ID token ${what}`, async () => {
      const alice = await signIn(gateway, { login: { refreshToken: true } });
      gateway.access.changePerson(person);
      const refused = await refresh(gateway, alice, alice.tokens.refresh_token);
      expect(refused.status).toBe(400);
      expect((await refused.json<{ error: string }>()).error).toBe('invalid_grant');
      expect(await storedGrants()).toBe(0);
    });
  }

  it('issues nothing on a refreshed ID token signed with a key Access never published, and keeps the grant', async () => {
    const alice = await signIn(gateway, { login: { refreshToken: true } });
    gateway.access.changePerson({ email: 'mallory@example.com', signing: 'foreign-key' });
    const failed = await refresh(gateway, alice, alice.tokens.refresh_token);
    expect(failed.status).toBe(503);
    expect((await failed.json<{ error: string }>()).error).toBe('temporarily_unavailable');
    expect(await storedGrants()).toBe(1);
  });

  for (const [outage, down] of [
    ['answers 503', (g: Gateway) => (g.access.tokenEndpointDown = true)],
    ['cannot be reached', (g: Gateway) => (g.access.tokenEndpointUnreachable = true)],
  ] as const) {
    it(`keeps the grant when Access ${outage} at the refresh, and a later refresh works`, async () => {
      const alice = await signIn(gateway, { login: { refreshToken: true } });
      down(gateway);

      const failed = await refresh(gateway, alice, alice.tokens.refresh_token);
      expect(failed.status).toBe(503);
      expect(failed.headers.get('Cache-Control')).toContain('no-store');
      expect((await failed.json<{ error: string }>()).error).toBe('temporarily_unavailable');
      expect(await storedGrants()).toBe(1);
      expect((await mcpRequest(gateway, alice.tokens.access_token)).status).toBe(200);

      gateway.access.tokenEndpointDown = false;
      gateway.access.tokenEndpointUnreachable = false;
      const retried = await refresh(gateway, alice, alice.tokens.refresh_token);
      expect(retried.status).toBe(200);
      expect((await mcpRequest(gateway, (await retried.json<TokenResponse>()).access_token)).status).toBe(200);
    });
  }

  it('lets a client retry with its previous refresh token once Access has rotated its own', async () => {
    const alice = await signIn(gateway, { login: { refreshToken: true } });
    expect((await refresh(gateway, alice, alice.tokens.refresh_token)).status).toBe(200);

    const retried = await refresh(gateway, alice, alice.tokens.refresh_token);
    expect(retried.status).toBe(200);
    expect((await mcpRequest(gateway, (await retried.json<TokenResponse>()).access_token)).status).toBe(200);
  });

  it('asks Access once when two sessions refresh the same grant at the same time', async () => {
    const alice = await signIn(gateway, { login: { refreshToken: true } });
    const asked = accessTokenRefreshes(gateway);

    const answers = await Promise.all([refresh(gateway, alice, alice.tokens.refresh_token), refresh(gateway, alice, alice.tokens.refresh_token)]);
    expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
    expect(accessTokenRefreshes(gateway)).toBe(asked + 1);
    expect(await storedGrants()).toBe(1);
  });

  it('refreshes a grant without an Access refresh token as before, without asking Access', async () => {
    const alice = await signIn(gateway, { login: { email: 'alice@example.com' } });
    const asked = accessTokenRefreshes(gateway);
    gateway.access.tokenEndpointDown = true;

    const response = await refresh(gateway, alice, alice.tokens.refresh_token);
    expect(response.status).toBe(200);
    expect(accessTokenRefreshes(gateway)).toBe(asked);
    expect(await identityBehind((await response.json<TokenResponse>()).access_token)).toMatchObject({ email: 'alice@example.com' });
  });
});

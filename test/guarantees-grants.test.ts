import { env as bindings, reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Gateway, gatewayEnv, mcpRequest, PAT, signIn, type TokenResponse, tokenRequest } from './fixtures/gateway';
import { oauthHelpers } from './fixtures/helpers-api';

let gateway: Gateway;
beforeEach(async () => {
  await reset();
  gateway = await Gateway.start();
});
afterEach(() => {
  vi.unstubAllGlobals();
});

const ALICE_OWN = 'pat_SECRET_alice_own_9a8b7c6d5e4f';

/** Stops the Worker's clock, so a sign-in's time is known to the second. */
function signInSecond(): number {
  vi.useFakeTimers({ toFake: ['Date'] });
  const now = Date.now();
  vi.setSystemTime(now);
  return Math.floor(now / 1000);
}

describe('what a grant holds', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  // issue #16: the sign-in time (seconds since the epoch), for MAX_GRANT_AGE; issue #20: the app's
  // registered name, so the audit trail names the app with no registry read per request.
  it('holds only the email, Access subject, name, sign-in time and app name, decrypted with the client’s own token', async () => {
    gateway.env = gatewayEnv({ USER_TOKENS: JSON.stringify({ 'alice@example.com': ALICE_OWN }) });
    const signedInAt = signInSecond();
    const { tokens, client } = await signIn(gateway, { login: { email: 'Alice@Example.com', name: 'Alice Liddell' } });

    const summary = await oauthHelpers().unwrapToken(tokens.access_token);
    expect(summary?.grant.clientId).toBe(client.clientId);
    expect(summary?.grant.props).toStrictEqual({
      email: 'alice@example.com',
      sub: 'sub-Alice@Example.com',
      name: 'Alice Liddell',
      signedInAt,
      clientName: 'Test MCP Client',
    });
    const grants = await oauthHelpers().listUserGrants('alice@example.com');
    expect(grants.items).toHaveLength(1);
    expect(grants.items[0]).toMatchObject({ clientId: client.clientId, userId: 'alice@example.com', scope: ['mcp'], metadata: {} });
  });

  // issue #19: the groups Access sent, in the props and, for the admin view, the grant's metadata.
  it('holds the groups when Access sends them, as sent', async () => {
    gateway.env = gatewayEnv({ ACCESS_SCOPES: 'openid email profile groups' });
    const signedInAt = signInSecond();
    const { tokens } = await signIn(gateway, { login: { email: 'carol@example.com', groups: ['Writers', 'ops'] } });
    expect((await oauthHelpers().unwrapToken(tokens.access_token))?.grant.props).toStrictEqual({
      email: 'carol@example.com',
      sub: 'sub-carol@example.com',
      signedInAt,
      groups: ['Writers', 'ops'],
      clientName: 'Test MCP Client',
    });
    expect((await oauthHelpers().listUserGrants('carol@example.com')).items[0]?.metadata).toStrictEqual({ groups: ['Writers', 'ops'] });
  });

  it('leaves out the name when Access sends none', async () => {
    const signedInAt = signInSecond();
    const { tokens } = await signIn(gateway, { login: { email: 'bob@example.com' } });
    expect((await oauthHelpers().unwrapToken(tokens.access_token))?.grant.props).toStrictEqual({
      email: 'bob@example.com',
      sub: 'sub-bob@example.com',
      signedInAt,
      clientName: 'Test MCP Client',
    });
  });

  it('stores no upstream token anywhere in KV, in plain text or otherwise', async () => {
    gateway.env = gatewayEnv({ USER_TOKENS: JSON.stringify({ 'alice@example.com': ALICE_OWN }) });
    await signIn(gateway);
    const { keys } = await bindings.OAUTH_KV.list();
    // The evidence is only worth something if the sign-in wrote what it should.
    expect(keys.map((key) => key.name.split(':')[0])).toEqual(expect.arrayContaining(['client', 'grant', 'token']));
    const stored = (await Promise.all(keys.map((key) => bindings.OAUTH_KV.get(key.name)))).join('\n');
    for (const secret of [PAT, ALICE_OWN, 'pat_SECRET']) expect(stored).not.toContain(secret);
  });

  // issue #19: Access's refresh token rides in the grant's encrypted props, and only there.
  it('keeps Access’s refresh token in the grant only: never in what the MCP handler sees, a response, a log or KV plain text', async () => {
    const logged: unknown[] = [];
    for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void logged.push(...args));
    }
    const upstreamSaw: string[] = [];
    const upstream = gateway.routes.get('https://upstream.example/mcp');
    gateway.routes.set('https://upstream.example/mcp', async (request) => {
      upstreamSaw.push(JSON.stringify([...request.headers]), await request.clone().text());
      return upstream ? upstream(request) : new Response(null, { status: 500 });
    });
    const signedInAt = signInSecond();
    const { tokens, client } = await signIn(gateway, { login: { email: 'alice@example.com', refreshToken: true } });
    const answers = [JSON.stringify(tokens)];
    expect((await oauthHelpers().unwrapToken(tokens.access_token))?.grant.props).toStrictEqual({
      email: 'alice@example.com',
      sub: 'sub-alice@example.com',
      signedInAt,
      clientName: 'Test MCP Client',
    });

    const refreshed = await tokenRequest(gateway, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.clientId });
    expect(refreshed.status).toBe(200);
    const next = await refreshed.json<TokenResponse>();
    answers.push(JSON.stringify(next));
    // The refresh went to Access with the token it issued at the sign-in, so the grant held it.
    expect(gateway.access.issuedRefreshTokens).toHaveLength(2);
    expect((await oauthHelpers().unwrapToken(next.access_token))?.grant.props).toStrictEqual({
      email: 'alice@example.com',
      sub: 'sub-alice@example.com',
      signedInAt,
      clientName: 'Test MCP Client',
    });
    const mcp = await mcpRequest(gateway, next.access_token);
    expect(mcp.status).toBe(200);
    answers.push(JSON.stringify([...mcp.headers]), await mcp.text());

    const { keys } = await bindings.OAUTH_KV.list();
    const stored = (await Promise.all(keys.map((key) => bindings.OAUTH_KV.get(key.name)))).join('\n');
    const everywhere = [stored, ...answers, ...upstreamSaw, JSON.stringify(logged)].join('\n');
    expect(upstreamSaw.length).toBeGreaterThan(0);
    for (const secret of gateway.access.issuedRefreshTokens) expect(everywhere).not.toContain(secret);
    expect(everywhere).not.toContain('access-refresh-SECRET');
  });
});

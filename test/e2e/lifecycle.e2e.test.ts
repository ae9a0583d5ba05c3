/**
 * What happens to a connection after the first sign-in: refresh, revocation, a person the gateway
 * does not allow, and an upstream that refuses the gateway's PAT.
 */
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectWithOAuth, headlessClient } from './support/mcp-client';
import type { Recorder } from './support/recorder';
import { type E2EStack, gatewayLogs, startE2EStack } from './support/stack';

const WRONG_PAT = 'wrong-pat';

/** The gateway's authorization server metadata (RFC 8414). */
async function serverMetadata(stack: E2EStack) {
  const response = await fetch(`${stack.urls.gateway}/.well-known/oauth-authorization-server`);
  expect(response.status).toBe(200);
  return (await response.json()) as { token_endpoint: string; revocation_endpoint: string };
}

/** A form POST to the token or revocation endpoint, as a public client (client_id, no secret). */
function postForm(recorder: Recorder, url: string, fields: Record<string, string>) {
  return recorder.fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
}

/** An MCP initialize request straight to the gateway with `accessToken`. */
function initialize(recorder: Recorder, stack: E2EStack, accessToken: string) {
  return recorder.fetch(stack.urls.mcp, {
    method: 'POST',
    headers: { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'e2e-by-hand', version: '1.0.0' } },
    }),
  });
}

function expectNotInGatewayLogs(stack: E2EStack, secret: string) {
  const lines = gatewayLogs(stack);
  expect(lines.length).toBeGreaterThan(0);
  expect(lines.filter((line) => line.includes(secret))).toEqual([]);
}

describe('tokens after the first sign-in', () => {
  let stack: E2EStack;
  beforeAll(async () => {
    stack = await startE2EStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('refreshes: the SDK swaps a refused access token for a new one without a new sign-in, and a hand refresh works too', async () => {
    const { client, provider, recorder } = await connectWithOAuth(stack.urls.mcp);
    const clientId = provider.client?.client_id ?? '';
    const first = { ...provider.savedTokens };
    expect(first.access_token && first.refresh_token).toBeTruthy();
    const { token_endpoint, revocation_endpoint } = await serverMetadata(stack);

    // Stands in for expiry (ACCESS_TOKEN_TTL is at least 60 s): the gateway now answers 401 to it.
    const revoked = await postForm(recorder, revocation_endpoint, { token: first.access_token ?? '', token_type_hint: 'access_token', client_id: clientId });
    expect(revoked.status).toBe(200);

    // The SDK meets the 401, refreshes, and retries; the person is not asked again.
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('list_boards');
    const second = { ...provider.savedTokens };
    expect(second.access_token).toBeTruthy();
    expect(second.access_token).not.toBe(first.access_token);
    expect(second.refresh_token).toBeTruthy();
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(provider.authorizations).toBe(1);
    expect(recorder.count('/register', 'POST')).toBe(1);
    expect(recorder.count('/token', 'POST')).toBe(3); // code exchange, the revocation above, the refresh
    const result = await client.callTool({ name: 'list_boards', arguments: {} });
    expect(result.isError).toBeFalsy();

    // By hand: the refresh token the SDK holds now gives yet another working access token.
    const refreshed = await postForm(recorder, token_endpoint, {
      grant_type: 'refresh_token',
      refresh_token: second.refresh_token ?? '',
      client_id: clientId,
      resource: stack.urls.mcp,
    });
    expect(refreshed.status).toBe(200);
    const third = (await refreshed.json()) as { access_token: string; refresh_token: string; token_type: string; expires_in: number };
    expect(third.token_type.toLowerCase()).toBe('bearer');
    expect(third.expires_in).toBeGreaterThan(0);
    expect(third.access_token).not.toBe(second.access_token);
    expect(third.refresh_token).not.toBe(second.refresh_token);
    const works = await initialize(recorder, stack, third.access_token);
    expect(works.status).toBe(200);
    expect(await works.text()).toContain('"serverInfo"');
    const stale = await initialize(recorder, stack, first.access_token ?? '');
    expect(stale.status).toBe(401);
    await stale.body?.cancel();

    // Issue #19: the stand-in Access issues refresh tokens, so each refresh asked Access again.
    expect(stack.logs.filter((line) => /^access: refreshed: /.test(line))).toHaveLength(2);

    await client.close();
    await recorder.expectNever(stack.upstreamToken);
    expectNotInGatewayLogs(stack, stack.upstreamToken);
  });

  it('revokes (RFC 7009 at /token): a revoked access token gets 401 on /mcp; a revoked refresh token ends the grant', async () => {
    const { client, provider, recorder } = await connectWithOAuth(stack.urls.mcp);
    const clientId = provider.client?.client_id ?? '';
    const { access_token: accessToken = '', refresh_token: refreshToken = '' } = provider.savedTokens ?? {};
    const { token_endpoint, revocation_endpoint } = await serverMetadata(stack);
    expect(revocation_endpoint).toBe(`${stack.urls.gateway}/token`);

    const before = await initialize(recorder, stack, accessToken);
    expect(before.status).toBe(200);
    await before.body?.cancel();

    expect((await postForm(recorder, revocation_endpoint, { token: accessToken, client_id: clientId })).status).toBe(200);
    const after = await initialize(recorder, stack, accessToken);
    expect(after.status).toBe(401);
    const challenge = after.headers.get('WWW-Authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain('invalid_token');
    expect(challenge).toContain('resource_metadata=');
    await after.body?.cancel();

    // Revoking an access token leaves the grant: its refresh token still works...
    const refreshed = await postForm(recorder, token_endpoint, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      client_id: clientId,
      resource: stack.urls.mcp,
    });
    expect(refreshed.status).toBe(200);
    const tokens = (await refreshed.json()) as { access_token: string; refresh_token: string };
    const works = await initialize(recorder, stack, tokens.access_token);
    expect(works.status).toBe(200);
    await works.body?.cancel();

    // ...until the refresh token is revoked, which ends the whole grant.
    expect((await postForm(recorder, revocation_endpoint, { token: tokens.refresh_token, token_type_hint: 'refresh_token', client_id: clientId })).status).toBe(
      200,
    );
    const gone = await initialize(recorder, stack, tokens.access_token);
    expect(gone.status).toBe(401);
    await gone.body?.cancel();
    const noRefresh = await postForm(recorder, token_endpoint, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
      client_id: clientId,
      resource: stack.urls.mcp,
    });
    expect(noRefresh.status).toBe(400);
    expect(((await noRefresh.json()) as { error: string }).error).toBe('invalid_grant');

    await client.close();
    await recorder.expectNever(stack.upstreamToken);
    expectNotInGatewayLogs(stack, stack.upstreamToken);
  });

  it('shows a person outside ALLOWED_EMAILS a readable 403 page after sign-in, and the client gets no code', async () => {
    const { provider, person, recorder, transport } = headlessClient(stack.urls.mcp, { email: 'mallory@example.net' });
    await expect(new Client({ name: 'e2e', version: '1.0.0' }).connect(transport())).rejects.toBeInstanceOf(UnauthorizedError);

    // Mallory got through consent and Access's sign-in; the gateway refused her at its callback.
    expect(person.seen.some((v) => v.url.href.startsWith(stack.urls.access.issuer))).toBe(true);
    const outcome = provider.outcome;
    expect(outcome?.kind).toBe('page');
    if (outcome?.kind !== 'page') return;
    expect(outcome.status).toBe(403);
    expect(outcome.url.pathname).toBe('/callback');
    expect(person.seen.at(-1)?.response.headers.get('Content-Type')).toMatch(/^text\/html/);
    expect(outcome.text).toContain('<h1>Not allowed</h1>');
    expect(outcome.text).toContain('mallory@example.net is not allowed to use this server.');
    expect(outcome.text).not.toMatch(/\bat .*\(.*:\d+:\d+\)|Error:|\.ts\b/);
    // The flow ended on that page, not at the client's redirect URI: no code, so no token request.
    expect(recorder.count('/token')).toBe(0);
    expect(provider.savedTokens).toBeUndefined();

    await recorder.expectNever(stack.upstreamToken);
    expectNotInGatewayLogs(stack, stack.upstreamToken);
  });
});

describe('an upstream that refuses the gateway PAT', () => {
  let stack: E2EStack;
  beforeAll(async () => {
    stack = await startE2EStack({ gatewayVars: { UPSTREAM_TOKEN: WRONG_PAT } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('gives the client 502 with JSON-RPC error -32003 and no challenge, never a 401, so it does not sign in again', async () => {
    const { provider, recorder, transport } = headlessClient(stack.urls.mcp);
    await expect(new Client({ name: 'e2e', version: '1.0.0' }).connect(transport())).rejects.toBeInstanceOf(UnauthorizedError);
    const authorized = transport();
    await authorized.finishAuth(provider.code());

    // The SDK surfaces the gateway's message as an error; twice, to show it does not loop into OAuth.
    for (const t of [authorized, transport()]) {
      const error = await new Client({ name: 'e2e', version: '1.0.0' }).connect(t).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StreamableHTTPError);
      expect((error as StreamableHTTPError).code).toBe(502);
      expect((error as Error).message).toContain("the upstream MCP server refused the gateway's credential");
    }
    expect(provider.authorizations).toBe(1);
    expect(recorder.count('/register')).toBe(1);

    // What the client received, by hand: a JSON-RPC error body, not a challenge.
    const response = await initialize(recorder, stack, provider.savedTokens?.access_token ?? '');
    expect(response.status).toBe(502);
    expect(response.headers.get('Content-Type')).toMatch(/^application\/json/);
    expect(response.headers.get('WWW-Authenticate')).toBeNull();
    expect(await response.json()).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32003, message: "the upstream MCP server refused the gateway's credential: its operator needs to renew it" },
    });

    // Only the very first, token-less request got a 401.
    const statuses = recorder.requests.filter((r) => r.url.pathname === '/mcp').map((r) => r.status);
    expect(statuses[0]).toBe(401);
    expect(statuses.slice(1).length).toBeGreaterThanOrEqual(3);
    expect(statuses.slice(1).every((s) => s === 502)).toBe(true);

    await recorder.expectNever(WRONG_PAT);
    await recorder.expectNever(stack.upstreamToken);
    expectNotInGatewayLogs(stack, WRONG_PAT);
    expectNotInGatewayLogs(stack, stack.upstreamToken);
  });
});

import { reset } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Gateway, gatewayEnv, mcpRequest, PAT, signIn, tokenRequest, UPSTREAM_URL } from './fixtures/gateway';

let gateway: Gateway;
beforeEach(async () => {
  await reset();
  gateway = await Gateway.start();
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'warn').mockImplementation(() => {});
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

/** Expects the proxy's JSON-RPC error, and no challenge that would send the client back to sign in. */
async function expectJsonRpcError(response: Response, status: number, code: number, id: unknown) {
  expect(response.status).toBe(status);
  expect(response.headers.get('WWW-Authenticate')).toBeNull();
  expect(await response.json()).toEqual({ jsonrpc: '2.0', error: { code, message: expect.any(String) }, id });
}

/** A JSON-RPC POST to /mcp with Content-Length, as clients send it (the proxy reads `id` only then). */
function rpc(token: string, message: Record<string, unknown>) {
  const body = JSON.stringify({ jsonrpc: '2.0', ...message });
  return gateway.fetch('/mcp', {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      'Content-Length': String(new TextEncoder().encode(body).length),
    },
    body,
  });
}

/** An upstream that takes the request and never answers; `aborted` resolves when the gateway gives up on it. */
function stallingUpstream() {
  let reached!: () => void;
  let aborted!: () => void;
  const state = {
    reached: new Promise<void>((resolve) => (reached = resolve)),
    aborted: new Promise<void>((resolve) => (aborted = resolve)),
    wasAborted: false,
  };
  gateway.routes.set(UPSTREAM_URL, (request) => {
    reached();
    return new Promise<Response>((_, reject) => {
      request.signal.addEventListener('abort', () => {
        state.wasAborted = true;
        aborted();
        reject(new DOMException('The operation was aborted', 'AbortError'));
      });
    });
  });
  return state;
}

describe('UPSTREAM_TIMEOUT through the Worker', () => {
  it('keeps the request pending until the timeout, then answers 504 -32005 and cancels the upstream request', async () => {
    const { tokens } = await signIn(gateway);
    gateway.env = gatewayEnv({ UPSTREAM_TIMEOUT: '5' });
    const upstream = stallingUpstream();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });

    let settled = false;
    const pending = rpc(tokens.access_token, { id: 'slow-7', method: 'tools/call' }).finally(() => {
      settled = true;
    });
    await upstream.reached;
    await vi.advanceTimersByTimeAsync(4_999);
    expect(settled).toBe(false);
    expect(upstream.wasAborted).toBe(false);

    await vi.advanceTimersByTimeAsync(1);
    await expectJsonRpcError(await pending, 504, -32005, 'slow-7');
    await upstream.aborted;
  });

  it('waits 30 seconds by default', async () => {
    const { tokens } = await signIn(gateway);
    const upstream = stallingUpstream();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });

    let settled = false;
    const pending = rpc(tokens.access_token, { id: 1, method: 'ping' }).finally(() => {
      settled = true;
    });
    await upstream.reached;
    await vi.advanceTimersByTimeAsync(29_999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await expectJsonRpcError(await pending, 504, -32005, 1);
  });
});

describe('CORS through the Worker', () => {
  it('answers a preflight for /mcp with exactly these methods and headers allowed', async () => {
    const response = await gateway.fetch('/mcp', {
      method: 'OPTIONS',
      headers: {
        Origin: 'http://localhost:6274',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization, content-type, mcp-session-id, mcp-protocol-version, last-event-id, mcp-method, mcp-name',
      },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('Access-Control-Allow-Origin')).toBe('http://localhost:6274');
    // The provider answers first. `*` covers every method and header for a request without
    // cookies, except Authorization, which the Fetch standard requires by name.
    expect(response.headers.get('Access-Control-Allow-Methods')).toBe('*');
    expect(response.headers.get('Access-Control-Allow-Headers')).toBe('Authorization, *');
    expect(response.headers.get('Access-Control-Allow-Credentials')).toBeNull();
    expect(response.headers.get('Vary')).toContain('Origin');
  });

  it('lets a browser client read Mcp-Session-Id and WWW-Authenticate on the real answers', async () => {
    const { tokens } = await signIn(gateway);
    gateway.routes.set(UPSTREAM_URL, () => Response.json({ jsonrpc: '2.0', id: 1, result: {} }, { headers: { 'Mcp-Session-Id': 'sess-1' } }));
    const init = (token?: string) => ({
      method: 'POST',
      headers: { Origin: 'http://localhost:6274', 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    const ok = await gateway.fetch('/mcp', init(tokens.access_token));
    expect(ok.status).toBe(200);
    expect(ok.headers.get('Access-Control-Allow-Origin')).toBe('http://localhost:6274');
    expect(
      ok.headers
        .get('Access-Control-Expose-Headers')
        ?.toLowerCase()
        .split(/\s*,\s*/),
    ).toEqual(expect.arrayContaining(['mcp-session-id', 'www-authenticate']));
    const challenged = await gateway.fetch('/mcp', init());
    expect(challenged.status).toBe(401);
    expect(challenged.headers.get('Access-Control-Expose-Headers')?.toLowerCase()).toContain('www-authenticate');
  });
});

describe('no upstream token for this person (-32002)', () => {
  const ONLY_BOB = JSON.stringify({ 'bob@example.com': 'pat_SECRET_bob_4c3b2a19' });
  const ONLY_CAROL = JSON.stringify({ 'carol@example.com': 'pat_SECRET_carol_7e6d5c4b' });

  it('answers /mcp with 403 -32002 once their token is gone, and sends nothing upstream', async () => {
    gateway.env = gatewayEnv({ UPSTREAM_TOKEN: undefined, USER_TOKENS: ONLY_BOB });
    const { tokens } = await signIn(gateway, { login: { email: 'bob@example.com' } });
    const upstream: (string | null)[] = [];
    gateway.routes.set(UPSTREAM_URL, (request) => {
      upstream.push(request.headers.get('Authorization'));
      return Response.json({ jsonrpc: '2.0', id: 1, result: {} });
    });
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    expect(upstream).toEqual(['Bearer pat_SECRET_bob_4c3b2a19']);

    gateway.env = gatewayEnv({ UPSTREAM_TOKEN: undefined, USER_TOKENS: ONLY_CAROL });
    await expectJsonRpcError(await rpc(tokens.access_token, { id: 'q-2', method: 'tools/list' }), 403, -32002, 'q-2');
    expect(upstream).toHaveLength(1);
  });

  it('refuses their refresh with invalid_grant and ends the grant', async () => {
    gateway.env = gatewayEnv({ UPSTREAM_TOKEN: undefined, USER_TOKENS: ONLY_BOB });
    const { client, tokens } = await signIn(gateway, { login: { email: 'bob@example.com' } });

    gateway.env = gatewayEnv({ UPSTREAM_TOKEN: undefined, USER_TOKENS: ONLY_CAROL });
    const refresh = () => tokenRequest(gateway, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: client.clientId });
    const refused = await refresh();
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: 'invalid_grant' });

    // Giving them a token back does not revive the grant: they sign in again.
    gateway.env = gatewayEnv({ UPSTREAM_TOKEN: undefined, USER_TOKENS: ONLY_BOB });
    expect((await refresh()).status).toBe(400);
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(401);
  });

  it('is not what someone with the shared UPSTREAM_TOKEN gets', async () => {
    const { tokens } = await signIn(gateway, { login: { email: 'dave@example.com' } });
    expect((await mcpRequest(gateway, tokens.access_token)).status).toBe(200);
    expect(gateway.upstreamAuthorizations).toEqual([`Bearer ${PAT}`]);
  });
});

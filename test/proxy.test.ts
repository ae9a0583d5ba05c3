import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { proxyMcpRequest } from '../src/proxy';
import { Gateway } from './fixtures/gateway';
import {
  ALICE_PAT,
  CLIENT_HEADERS,
  CLIENT_ID,
  callProxy,
  captureLogs,
  closedPort,
  expectJsonRpcError,
  expectNothingLeaked,
  headerNames,
  openSession,
  PAT,
  proxyConfig,
  received,
  rpcPost,
  tag,
} from './fixtures/proxy';

const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {} } };

beforeEach(() => {
  captureLogs();
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('proxy: routing', () => {
  it('sends /mcp to UPSTREAM_URL exactly, with the query', async () => {
    const t = tag();
    const response = await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${t}&x=1`, init: rpcPost(initialize) });
    expect(response.status).toBe(200);
    const [request] = await received(t);
    expect(request).toMatchObject({ method: 'POST', path: '/json/mcp', query: `?t=${t}&x=1` });
  });

  it('sends /mcp/<rest> under UPSTREAM_URL, with or without its trailing slash', async () => {
    for (const base of ['/json/mcp', '/json/mcp/']) {
      const t = tag();
      await callProxy({ config: proxyConfig(base), path: `/mcp/readonly/x?t=${t}`, init: rpcPost(initialize) });
      expect((await received(t))[0]?.path).toBe('/json/mcp/readonly/x');
    }
  });

  it("keeps UPSTREAM_URL's own query parameters, which the client cannot override", async () => {
    const t = tag();
    const config = proxyConfig('/json/mcp?readonly=1');
    await callProxy({ config, path: `/mcp?readonly=0&t=${t}`, init: rpcPost(initialize) });
    expect((await received(t))[0]?.query).toBe(`?readonly=1&t=${t}`);
  });

  it.each([
    ['an encoded slash', '/mcp/..%2F..%2Fadmin'],
    ['an encoded backslash', '/mcp/%5C..%5Cadmin'],
    ['an encoded dot segment and slash', '/mcp/%2e%2e%2fadmin'],
    ['a double-encoded dot segment', '/mcp/%252e%252e/admin'],
    ['a //host path', '/mcp//evil.example/x'],
    ['an empty segment', '/mcp/a//b'],
    ['an encoded NUL', '/mcp/a%00b'],
    ['dot segments that climb out of /mcp', '/mcp/a/%2E%2E/../admin'],
    ['a path beside /mcp', '/mcpadmin'],
    ['a reserved segment without a signature', '/mcp/.endpoint'],
  ])('answers 400 to %s and sends nothing upstream', async (_, path) => {
    const t = tag();
    const response = await callProxy({ config: proxyConfig('/json/mcp'), path: `${path}?t=${t}`, init: rpcPost(initialize) });
    await expectJsonRpcError(response, 400, -32600);
    expect(await received(t, 0)).toEqual([]);
  });

  it('answers 405 with Allow to methods other than POST, GET and DELETE', async () => {
    const response = await callProxy({ config: proxyConfig('/json/mcp'), path: '/mcp', init: { method: 'PUT', body: '{}' } });
    expect(response.headers.get('Allow')).toBe('GET, POST, DELETE, OPTIONS');
    await expectJsonRpcError(response, 405, -32600);
  });

  it('answers a CORS preflight that allows the MCP request headers', async () => {
    const response = await callProxy({
      config: proxyConfig('/json/mcp'),
      path: '/mcp',
      init: { method: 'OPTIONS', headers: { Origin: 'http://localhost:6274', 'Access-Control-Request-Method': 'POST' } },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('Access-Control-Allow-Origin')).toBe('http://localhost:6274');
    const allowed = response.headers.get('Access-Control-Allow-Headers')?.toLowerCase() ?? '';
    for (const name of ['authorization', 'content-type', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id', 'mcp-method', 'mcp-name']) {
      expect(allowed).toContain(name);
    }
  });

  it("forwards DELETE with the upstream's session id and passes the 204 back", async () => {
    const config = proxyConfig('/json/mcp');
    const session = await openSession(config);
    const t = tag();
    const response = await callProxy({
      config,
      path: `/mcp?t=${t}`,
      init: { method: 'DELETE', headers: { ...CLIENT_HEADERS, 'Mcp-Session-Id': session.handle } },
    });
    expect(response.status).toBe(204);
    expect(await received(t)).toMatchObject([{ method: 'DELETE', headers: { 'mcp-session-id': `sess-${session.t}` } }]);
  });
});

describe('issue #16: path segments an upstream could read as another path', () => {
  it.each([
    ['a `..;` segment (Tomcat and Spring drop `;` parameters, then resolve `..`)', '/mcp/..;/admin/users'],
    ['`..;` with a parameter', '/mcp/..;jsessionid=x/admin'],
    ['`..;` twice, deeper down', '/mcp/a/..;/..;/admin'],
    ['a `;` anywhere in a segment', '/mcp/tools;v=1/list'],
    ['an encoded `;`', '/mcp/..%3b/admin'],
    ['an encoded `;` in capitals', '/mcp/..%3B/admin'],
    ['a double-encoded `;`', '/mcp/..%253b/admin'],
    ['a triple-encoded `;`', '/mcp/..%25253B/admin'],
    ['a fullwidth `;` (U+FF1B)', '/mcp/..%EF%BC%9B/admin'],
    ['`..` and a space (IIS and Windows trim it)', '/mcp/.. /admin'],
    ['`..` and an encoded space', '/mcp/..%20/admin'],
    ['`..` and an encoded tab', '/mcp/..%09/admin'],
    ['`..` and an encoded NUL', '/mcp/..%00/admin'],
    ['`..` and a no-break space', '/mcp/..%C2%A0/admin'],
    ['three dots', '/mcp/.../admin'],
    ['`.%2e.`', '/mcp/.%2e./admin'],
    ['`..%2e`', '/mcp/..%2e/admin'],
    ['encoded dots and a space', '/mcp/%2e%2e%20/admin'],
    ['`.` and a space', '/mcp/. /admin'],
    ['a segment of spaces only', '/mcp/%20%20/admin'],
    ['fullwidth dots (U+FF0E)', '/mcp/%EF%BC%8E%EF%BC%8E/admin'],
    ["IIS's %u escapes", '/mcp/%u002e%u002e/admin'],
  ])('answers 400 to %s and sends nothing upstream', async (_, path) => {
    const t = tag();
    const response = await callProxy({ config: proxyConfig('/json/mcp'), path: `${path}?t=${t}`, init: rpcPost(initialize) });
    await expectJsonRpcError(response, 400, -32600);
    expect(await received(t, 0)).toEqual([]);
  });

  it.each([
    ['dots inside names', '/mcp/a.b/v1.2/x.json'],
    ['a leading-dot name', '/mcp/.well-known/x'],
    ['dots with other characters', '/mcp/..a/a../a./...a'],
    ['an encoded space inside a name', '/mcp/my%20notes/caf%C3%A9'],
  ])('still sends %s upstream as they are', async (_, path) => {
    const t = tag();
    const response = await callProxy({ config: proxyConfig('/json/mcp'), path: `${path}?t=${t}`, init: rpcPost(initialize) });
    expect(response.status).toBe(200);
    expect((await received(t))[0]?.path).toBe(`/json${path}`);
  });

  it('refuses, with a 502 and no Location, an upstream redirect to a path with a ..; segment', async () => {
    const config = proxyConfig('/redirect/mcp');
    const to = '/redirect/mcp/..;/admin';
    const response = await callProxy({ config, path: `/mcp?to=${encodeURIComponent(to)}`, init: { method: 'GET', headers: CLIENT_HEADERS } });
    expect(response.headers.get('Location')).toBeNull();
    await expectJsonRpcError(response, 502, -32004);
  });
});

describe('proxy: request headers', () => {
  it("sends the upstream credential as Authorization: Bearer and never the client's token", async () => {
    const t = tag();
    await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${t}`, init: rpcPost(initialize) });
    const [request] = await received(t);
    expect(request?.headers.authorization).toBe(`Bearer ${PAT}`);
    expect(headerNames(request!).filter((name) => name === 'authorization')).toHaveLength(1);
    expect(JSON.stringify(request)).not.toContain('client-bearer-token');
  });

  it("never sends the client's cookies, proxy credentials, Cloudflare identity headers or Origin upstream", async () => {
    const t = tag();
    await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${t}`, init: rpcPost(initialize) });
    const names = headerNames((await received(t))[0]!);
    for (const name of [
      'cookie',
      'proxy-authorization',
      'cf-access-jwt-assertion',
      'cf-access-authenticated-user-email',
      'cf-connecting-ip',
      'x-forwarded-for',
      'x-real-ip',
      'x-mcp-readonly',
      'origin',
    ]) {
      expect(names).not.toContain(name);
    }
  });

  it('forwards the headers the MCP transports use', async () => {
    const config = proxyConfig('/json/mcp');
    const session = await openSession(config);
    const t = tag();
    const headers = {
      'Mcp-Session-Id': session.handle,
      'MCP-Protocol-Version': '2025-11-25',
      'Mcp-Method': 'tools/call',
      'Mcp-Name': 'search',
      'Last-Event-ID': 'evt-7',
    };
    // The body the headers mirror (issue #18: headers that disagree with it go nowhere).
    const search = { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'search', arguments: {} } };
    await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(search, headers) });
    expect((await received(t))[0]?.headers).toMatchObject({
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      // The upstream's own id, for the handle the client holds (issue #16).
      'mcp-session-id': `sess-${session.t}`,
      'mcp-protocol-version': '2025-11-25',
      'mcp-method': 'tools/call',
      'mcp-name': 'search',
      'last-event-id': 'evt-7',
      'user-agent': 'test-mcp-client/1.0',
    });
  });

  it('sends the body unchanged', async () => {
    const t = tag();
    await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${t}`, init: rpcPost(initialize) });
    expect(JSON.parse((await received(t))[0]?.body ?? '')).toEqual(initialize);
  });

  it('streams a large body through unchanged', async () => {
    const t = tag();
    const big = JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { blob: 'y'.repeat(3 * 1024 * 1024) } });
    await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${t}`, init: rpcPost(JSON.parse(big)) });
    expect((await received(t))[0]?.body).toBe(big);
  });

  it('uses UPSTREAM_AUTH_HEADER with an empty scheme for a bare API key', async () => {
    const t = tag();
    const config = proxyConfig('/json/mcp', { UPSTREAM_AUTH_HEADER: 'X-API-Key', UPSTREAM_AUTH_SCHEME: '' });
    await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(initialize) });
    const [request] = await received(t);
    expect(request?.headers['x-api-key']).toBe(PAT);
    expect(headerNames(request!)).not.toContain('authorization');
  });

  it('uses UPSTREAM_AUTH_SCHEME as the prefix', async () => {
    const t = tag();
    await callProxy({ config: proxyConfig('/json/mcp', { UPSTREAM_AUTH_SCHEME: 'token' }), path: `/mcp?t=${t}`, init: rpcPost(initialize) });
    expect((await received(t))[0]?.headers.authorization).toBe(`token ${PAT}`);
  });

  it('adds UPSTREAM_HEADERS, which the client cannot replace, and which cannot replace the credential', async () => {
    const t = tag();
    const config = proxyConfig('/json/mcp', { UPSTREAM_HEADERS: JSON.stringify({ 'X-MCP-Readonly': 'true', Authorization: 'Bearer other' }) });
    await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(initialize) });
    const [request] = await received(t);
    expect(request?.headers['x-mcp-readonly']).toBe('true');
    expect(request?.headers.authorization).toBe(`Bearer ${PAT}`);
  });

  it("sends a user's own USER_TOKENS credential, and UPSTREAM_TOKEN for everyone else", async () => {
    const config = proxyConfig('/json/mcp', { USER_TOKENS: JSON.stringify({ 'Alice@Example.com': ALICE_PAT }) });
    const [alice, bob] = [tag(), tag()];
    await callProxy({ config, path: `/mcp?t=${alice}`, init: rpcPost(initialize), email: 'alice@example.com' });
    await callProxy({ config, path: `/mcp?t=${bob}`, init: rpcPost(initialize), email: 'bob@example.com' });
    expect((await received(alice))[0]?.headers.authorization).toBe(`Bearer ${ALICE_PAT}`);
    expect((await received(bob))[0]?.headers.authorization).toBe(`Bearer ${PAT}`);
  });

  it('answers 403 with a JSON-RPC error, and sends nothing upstream, for a user with no credential', async () => {
    const t = tag();
    const config = proxyConfig('/json/mcp', { UPSTREAM_TOKEN: '', USER_TOKENS: JSON.stringify({ 'alice@example.com': ALICE_PAT }) });
    const response = await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost({ ...initialize, id: 'req-7' }), email: 'bob@example.com' });
    await expectJsonRpcError(response, 403, -32002, 'req-7');
    expect(await received(t, 0)).toEqual([]);
  });
});

describe('proxy: response headers', () => {
  it('passes the status, body and protocol headers unchanged, and the session id as a handle for it', async () => {
    const t = tag();
    const response = await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${t}`, init: rpcPost(initialize) });
    expect(response.status).toBe(200);
    expect(response.headers.get('Content-Type')).toBe('application/json');
    // The upstream's id, bound to the person (issue #16: proxy-sessions.test.ts).
    expect(response.headers.get('Mcp-Session-Id')).toMatch(new RegExp(`^${btoa(`sess-${t}`).replace(/=+$/, '')}\\.[\\w-]{43}$`));
    expect(response.headers.get('Mcp-Protocol-Version')).toBe('2025-11-25');
    expect(response.headers.get('Cache-Control')).toBe('no-store');
    expect(JSON.parse(await expectNothingLeaked(response))).toEqual({ jsonrpc: '2.0', id: 1, result: { ok: true } });
  });

  it("drops the upstream's Set-Cookie, WWW-Authenticate, CORS and infrastructure headers", async () => {
    const response = await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${tag()}`, init: rpcPost(initialize) });
    for (const name of [
      'Set-Cookie',
      'WWW-Authenticate',
      'Server',
      'X-Powered-By',
      'X-Upstream-Host',
      'Strict-Transport-Security',
      'Access-Control-Allow-Credentials',
    ]) {
      expect(response.headers.get(name), name).toBeNull();
    }
    expect(response.headers.get('Access-Control-Allow-Origin')).toBe('http://localhost:6274');
  });

  it('lets a browser client read Mcp-Session-Id and WWW-Authenticate', async () => {
    const response = await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${tag()}`, init: rpcPost(initialize) });
    const exposed = response.headers.get('Access-Control-Expose-Headers')?.toLowerCase() ?? '';
    expect(exposed).toContain('mcp-session-id');
    expect(exposed).toContain('www-authenticate');
  });

  it('passes a compressed upstream answer on decoded, without a stale Content-Encoding', async () => {
    const response = await callProxy({ config: proxyConfig('/gzip/mcp'), path: `/mcp?t=${tag()}`, init: rpcPost(initialize) });
    expect(response.headers.get('Content-Encoding')).toBeNull();
    expect(await response.json()).toEqual({ jsonrpc: '2.0', id: 1, result: { compressed: true } });
  });

  it('passes an upstream error status such as an expired session (404) unchanged', async () => {
    const response = await callProxy({ config: proxyConfig('/status/404/mcp'), path: `/mcp?t=${tag()}`, init: rpcPost(initialize) });
    expect(response.status).toBe(404);
    expect(response.headers.get('WWW-Authenticate')).toBeNull();
    expect(response.headers.get('Set-Cookie')).toBeNull();
    expect(JSON.parse(await response.text())).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 } });
  });
});

describe('proxy: log line', () => {
  it('writes one JSON line with who, what and how it went, and no secret', async () => {
    const logs = captureLogs();
    const t = tag();
    await callProxy({
      config: proxyConfig('/json/mcp'),
      path: `/mcp/sub?t=${t}`,
      init: rpcPost({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'get_issue', arguments: { query: 'secret-arg' } } }),
    });
    expect(logs.parsed()).toEqual([
      {
        event: 'mcp_proxy',
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        upstream: 'mcp',
        email: 'alice@example.com',
        clientId: CLIENT_ID,
        method: 'POST',
        path: '/mcp/sub',
        rpcMethod: 'tools/call',
        tool: 'get_issue',
        status: 200,
        upstreamStatus: 200,
        latencyMs: expect.any(Number),
        outcome: 'ok',
      },
    ]);
    const line = logs.lines().join('\n');
    for (const secret of [PAT, 'client-bearer-token', 'client-cookie-value', 'secret-arg', t]) expect(line).not.toContain(secret);
  });

  it('issue #10: prints the line once the response is handed back, and keeps the isolate until it has', async () => {
    const logs = captureLogs();
    const ctx = createExecutionContext();
    const config = proxyConfig('/json/mcp');
    const upstream = config.upstreams[0];
    if (!upstream) throw new Error('no upstream');
    const response = await proxyMcpRequest(
      new Request(`https://gw.example/mcp?t=${tag()}`, rpcPost({ jsonrpc: '2.0', id: 1, method: 'ping' })),
      { config, upstream, identity: { email: 'alice@example.com', sub: 'sub-alice' }, clientId: CLIENT_ID },
      ctx,
    );
    expect(response.status).toBe(200);
    expect(logs.parsed().filter((l) => l.event === 'mcp_proxy')).toEqual([]);
    await waitOnExecutionContext(ctx);
    expect(logs.parsed().filter((l) => l.event === 'mcp_proxy')).toEqual([expect.objectContaining({ rpcMethod: 'ping', status: 200, outcome: 'ok' })]);
  });

  it('names every method of a batch, and none for a body too large to read', async () => {
    const logs = captureLogs();
    const batch = [
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
    ];
    await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${tag()}`, init: rpcPost(batch) });
    await callProxy({
      config: proxyConfig('/json/mcp'),
      path: `/mcp?t=${tag()}`,
      init: rpcPost({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { blob: 'z'.repeat(1_100_000) } }),
    });
    expect(logs.parsed().map((entry) => entry.rpcMethod)).toEqual(['tools/list,notifications/initialized', undefined]);
  });
});

describe('proxy: upstream failures', () => {
  it.each([401, 403])("turns an upstream %i into a 502 that says the upstream refused the gateway's credential", async (status) => {
    const logs = captureLogs();
    const response = await callProxy({ config: proxyConfig(`/status/${status}/mcp`), path: `/mcp?t=${tag()}`, init: rpcPost({ ...initialize, id: 5 }) });
    await expectJsonRpcError(response, 502, -32003, 5);
    expect(logs.parsed()[0]).toMatchObject({ status: 502, upstreamStatus: status, outcome: 'upstream_refused_credential' });
    expect(logs.lines().join('\n')).not.toContain(PAT);
  });

  it('answers 502 when nothing listens on the upstream port', async () => {
    const config = proxyConfig('/mcp', { UPSTREAM_URL: `http://127.0.0.1:${await closedPort()}/mcp` });
    const response = await callProxy({ config, path: '/mcp', init: rpcPost(initialize) });
    await expectJsonRpcError(response, 502, -32004, 1);
  });

  it("answers 502 when the upstream's name does not resolve", async () => {
    const config = proxyConfig('/mcp', { UPSTREAM_URL: 'https://upstream.invalid/mcp' });
    const response = await callProxy({ config, path: '/mcp', init: rpcPost(initialize) });
    await expectJsonRpcError(response, 502, -32004, 1);
    expect(JSON.stringify([...response.headers])).not.toContain('upstream.invalid');
  });

  it('answers 502 when the upstream resets the connection', async () => {
    const response = await callProxy({ config: proxyConfig('/reset/mcp'), path: `/mcp?t=${tag()}`, init: rpcPost(initialize) });
    await expectJsonRpcError(response, 502, -32004, 1);
  });

  it('passes a redirect within UPSTREAM_URL as the gateway URL for it', async () => {
    const config = proxyConfig('/redirect/mcp');
    const response = await callProxy({ config, path: `/mcp?t=${tag()}&to=/redirect/mcp/`, init: { method: 'GET', headers: CLIENT_HEADERS } });
    expect(response.status).toBe(307);
    expect(response.headers.get('Location')).toBe('/mcp/');
  });

  it('refuses, with a 502 and no Location, a redirect that leaves UPSTREAM_URL', async () => {
    for (const to of ['https://elsewhere.example/steal', '/admin']) {
      const config = proxyConfig('/redirect/mcp');
      const response = await callProxy({ config, path: `/mcp?to=${encodeURIComponent(to)}`, init: { method: 'GET', headers: CLIENT_HEADERS } });
      expect(response.headers.get('Location')).toBeNull();
      await expectJsonRpcError(response, 502, -32004);
    }
  });
});

describe('proxy: CORS through the Worker', () => {
  it("answers a browser client's preflight for /mcp with the MCP request headers allowed", async () => {
    const gateway = await Gateway.start();
    try {
      const response = await gateway.fetch('/mcp', {
        method: 'OPTIONS',
        headers: {
          Origin: 'http://localhost:6274',
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'authorization, content-type, mcp-session-id, mcp-protocol-version, last-event-id',
        },
      });
      expect(response.status).toBeLessThan(300);
      expect(response.headers.get('Access-Control-Allow-Origin')).toBe('http://localhost:6274');
      // The provider allows Authorization by name (a wildcard does not cover it) and the rest by `*`.
      expect(response.headers.get('Access-Control-Allow-Headers')).toMatch(/Authorization/i);
      expect(response.headers.get('Access-Control-Allow-Headers')).toContain('*');
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

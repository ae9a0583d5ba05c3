import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config';
import {
  CLIENT_HEADERS,
  callProxy,
  captureLogs,
  expectJsonRpcError,
  openSession,
  PAT,
  proxyConfig,
  proxyEnv,
  received,
  rpcPost,
  tag,
  upstreamOrigin,
} from './fixtures/proxy';

/**
 * Issue #16: with one shared upstream credential the upstream cannot tell people apart, so the
 * session id is all that separates their sessions. The client sees a handle bound to the person
 * and the upstream; the upstream sees its own id.
 */

const ping = (id: number) => ({ jsonrpc: '2.0', id, method: 'ping' });
const ALICE = 'alice@example.com';
const BOB = 'bob@example.com';

const withSession = (handle: string, method = 'POST', id = 2): RequestInit =>
  method === 'POST'
    ? rpcPost(ping(id), { 'Mcp-Session-Id': handle })
    : { method, headers: { ...CLIENT_HEADERS, Accept: 'text/event-stream', 'Mcp-Session-Id': handle } };

beforeEach(() => {
  captureLogs();
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('issue #16: upstream sessions are bound to the person', () => {
  it("gives the client a handle of visible ASCII in place of the upstream's session id", async () => {
    const { t, handle } = await openSession(proxyConfig('/json/mcp'));
    expect(handle).not.toBe(`sess-${t}`);
    expect(handle).not.toContain(`sess-${t}`);
    // MCP: a session id holds only visible ASCII (0x21 to 0x7E).
    expect(handle).toMatch(/^[\x21-\x7e]{1,128}$/);
  });

  it("sends the upstream its own session id for the person's handle, on POST, GET and DELETE", async () => {
    const config = proxyConfig('/json/mcp');
    const { t, handle } = await openSession(config);
    for (const method of ['POST', 'GET', 'DELETE']) {
      const next = tag();
      const response = await callProxy({ config, path: `/mcp?t=${next}`, init: withSession(handle, method) });
      expect(response.status, method).toBeLessThan(300);
      await response.body?.cancel();
      expect((await received(next))[0]).toMatchObject({ method, headers: { 'mcp-session-id': `sess-${t}` } });
    }
  });

  it('answers 404 -32001 to a handle presented by another person, and sends nothing upstream', async () => {
    const config = proxyConfig('/json/mcp');
    const { handle } = await openSession(config, { email: ALICE });
    for (const method of ['POST', 'GET', 'DELETE']) {
      const next = tag();
      const response = await callProxy({ config, path: `/mcp?t=${next}`, init: withSession(handle, method, 7), email: BOB });
      await expectJsonRpcError(response, 404, -32001, method === 'POST' ? 7 : null);
      expect(await received(next, 0), method).toEqual([]);
    }
  });

  it('answers 404 to a forged handle, a raw upstream session id, or a handle made under another key', async () => {
    const config = proxyConfig('/json/mcp');
    const { t, handle } = await openSession(config);
    const [, mac = ''] = handle.split('.');
    const otherKey = proxyConfig('/json/mcp', { COOKIE_ENCRYPTION_KEY: 'another-secret-0123456789abcdef012345678' });
    const { handle: foreign } = await openSession(otherKey);
    const forged = [
      `sess-${t}`,
      `${btoa('sess-someone-else').replace(/=+$/, '')}.${mac}`,
      `${handle.slice(0, -2)}${handle.endsWith('AA') ? 'BB' : 'AA'}`,
      handle.split('.')[0] ?? '',
      `${handle}.x`,
      foreign,
      '',
    ];
    for (const bad of forged) {
      const next = tag();
      const response = await callProxy({ config, path: `/mcp?t=${next}`, init: withSession(bad) });
      await expectJsonRpcError(response, 404, -32001, 2);
      expect(await received(next, 0), bad).toEqual([]);
    }
  });

  it("refuses one upstream's handle on another upstream of the same gateway", async () => {
    const url = `${upstreamOrigin()}/json/mcp`;
    const config = loadConfig(
      proxyEnv('/json/mcp', { UPSTREAMS: JSON.stringify({ github: { url, token: 'SHARED_PAT' }, linear: { url, token: 'SHARED_PAT' } }), SHARED_PAT: PAT }),
    );
    const { handle } = await openSession(config, { path: '/github/mcp' });
    const next = tag();
    const response = await callProxy({ config, path: `/linear/mcp?t=${next}`, init: withSession(handle) });
    await expectJsonRpcError(response, 404, -32001, 2);
    expect(await received(next, 0)).toEqual([]);
  });

  it("fetches the tool policy's list with the upstream's own session id, never the handle", async () => {
    const config = proxyConfig('/tools/json/mcp', { UPSTREAM_TOOLS: JSON.stringify({ readOnly: true }) });
    const { handle } = await openSession(config);
    const t = tag();
    const call = { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'delete_file', arguments: {} } };
    const response = await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(call, { 'Mcp-Session-Id': handle }) });
    expect(response.status).toBe(200);
    const got = await received(t, 3);
    expect(got.map((r) => JSON.parse(r.body).method)).toEqual(['tools/list', 'tools/list', 'tools/call']);
    // The /tools/ server names every session `sess-tools`.
    for (const request of got) expect(request.headers['mcp-session-id']).toBe('sess-tools');
  });

  it('leaves a request without a session alone (2026-07-28 stateless requests)', async () => {
    const t = tag();
    const response = await callProxy({ config: proxyConfig('/json/mcp'), path: `/mcp?t=${t}`, init: rpcPost(ping(4)) });
    expect(response.status).toBe(200);
    expect((await received(t))[0]?.headers['mcp-session-id']).toBeUndefined();
  });
});

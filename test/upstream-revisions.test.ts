import { env } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import pkg from '../package.json';
import { callUpstream, MODERN_PROTOCOL_VERSION } from '../src/upstreams';
import { Gateway } from './fixtures/gateway';
import { ALICE_TOKEN, connectionsPost, csrfOf, openConnections, ownTokensEnv, pasteToken, stepState, toTokenStep } from './fixtures/own-tokens';
import { callProxy, captureLogs, proxyConfig, type ReceivedRequest, received, rpcPost, tag, upstreamOrigin } from './fixtures/proxy';

/**
 * Issue #18: every request the gateway sends itself (the tool policy's annotation fetch, the token
 * check at login and on /connections) against the three kinds of upstream, each a real MCP SDK
 * server (test/fixtures/upstream-kinds.mjs): 2025-era with sessions, 2026-07-28 stateless that
 * still serves 2025 clients, and 2026-07-28 only.
 */

const MODERN = '2026-07-28';
const LEGACY = '2025-11-25';
type Kind = 'sessions' | 'both' | 'modern';
type Message = { jsonrpc: '2.0'; id?: unknown; result?: { content?: Array<{ text: string }> }; error?: { code: number } };

/** The real fetch, for routes the Gateway fixture hands on to the test upstream. */
const realFetch = globalThis.fetch.bind(globalThis);

beforeEach(() => {
  captureLogs();
});
afterEach(() => {
  vi.unstubAllGlobals();
});

/** The JSON-RPC answer in a JSON or SSE body. */
async function answerOf(response: Response): Promise<Message> {
  const text = await response.text();
  if (!(response.headers.get('Content-Type') ?? '').startsWith('text/event-stream')) return JSON.parse(text) as Message;
  const events = text.split(/\r?\n\r?\n/).flatMap((event) => event.split(/\r?\n/).filter((line) => line.startsWith('data:')));
  const messages = events.map((line) => JSON.parse(line.slice(5)) as Message);
  return messages.find((m) => m.id !== undefined) ?? (messages[0] as Message);
}

/** The per-request envelope a 2026-07-28 client puts in every request's `_meta`. */
const envelope = {
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 'test-client', version: '1.0.0' },
};

/**
 * A client of `revision` about to call tools through the proxy: a 2025 client initializes (and
 * keeps the session handle, if the upstream opened one); a 2026-07-28 one just sends requests.
 */
async function clientOf(revision: string, config: ReturnType<typeof proxyConfig>, t: string) {
  let session: Record<string, string> = {};
  if (revision !== MODERN) {
    const init = {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: revision, capabilities: {}, clientInfo: { name: 'test-client', version: '1' } },
    };
    const opened = await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(init) });
    expect(opened.status).toBe(200);
    await opened.body?.cancel();
    const handle = opened.headers.get('Mcp-Session-Id');
    session = handle ? { 'Mcp-Session-Id': handle } : {};
    const versioned = { 'MCP-Protocol-Version': revision, ...session };
    const initialized = await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost({ jsonrpc: '2.0', method: 'notifications/initialized' }, versioned) });
    await initialized.body?.cancel();
  }
  return async (id: number, name: string): Promise<Message> => {
    const modern = revision === MODERN;
    const params = { name, arguments: {}, ...(modern ? { _meta: envelope } : {}) };
    const headers: Record<string, string> = modern
      ? { 'MCP-Protocol-Version': MODERN, 'Mcp-Method': 'tools/call', 'Mcp-Name': name }
      : { 'MCP-Protocol-Version': revision, ...session };
    const response = await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost({ jsonrpc: '2.0', id, method: 'tools/call', params }, headers) });
    return answerOf(response);
  };
}

/** The gateway's own requests among what the upstream received: its ids start with `mcp-oauth-gateway`. */
const gatewayRequests = (got: ReceivedRequest[]) =>
  got.filter((r) => {
    try {
      return String(JSON.parse(r.body).id).startsWith('mcp-oauth-gateway');
    } catch {
      return false;
    }
  });

describe("issue #18: the tool policy's annotation fetch on each kind of upstream", () => {
  it.each<[Kind, string]>([
    ['sessions', LEGACY],
    ['both', LEGACY],
    ['both', MODERN],
    ['modern', MODERN],
  ])('lets the first call of a read-only tool through on a fresh gateway and refuses another (%s upstream, %s client)', async (kind, revision) => {
    const t = tag();
    // A configuration of its own: a fresh annotations cache, as on a fresh isolate.
    const config = proxyConfig(`/kinds/${kind}/mcp`, { UPSTREAM_TOOLS: JSON.stringify({ readOnly: true }) });
    const callTool = await clientOf(revision, config, t);

    const first = await callTool(1, 'get_issue');
    expect(first.error, JSON.stringify(first.error)).toBeUndefined();
    expect(first.result?.content?.[0]?.text).toBe('called get_issue');
    expect((await callTool(2, 'create_issue')).error?.code).toBe(-32602);
    expect((await callTool(3, 'list_commits')).error?.code).toBe(-32602);

    // The gateway asked for the list once, in the revision of the conversation it rode on.
    const [fetched, ...more] = gatewayRequests(await received(t, 0));
    expect(more).toEqual([]);
    const body = JSON.parse(fetched?.body ?? '{}');
    expect(body.method).toBe('tools/list');
    expect(fetched?.headers['mcp-protocol-version']).toBe(revision);
    if (revision === MODERN) {
      expect(body.params._meta).toEqual({
        'io.modelcontextprotocol/protocolVersion': MODERN,
        'io.modelcontextprotocol/clientCapabilities': {},
        'io.modelcontextprotocol/clientInfo': { name: 'mcp-oauth-gateway', version: pkg.version },
      });
      expect(fetched?.headers['mcp-method']).toBe('tools/list');
      // Not the client's tools/call headers.
      expect(fetched?.headers['mcp-name']).toBeUndefined();
    } else {
      expect(body.params._meta).toBeUndefined();
      expect(fetched?.headers['mcp-method']).toBeUndefined();
    }
  });
});

describe('issue #18: the token check on each kind of upstream', () => {
  /** A gateway whose notes upstream is the test server's `kind`, taking only ALICE_TOKEN. */
  async function gatewayFor(kind: Kind, query = '') {
    const url = `${upstreamOrigin()}/kinds/${kind}/mcp?accept=${ALICE_TOKEN}&t=${tag()}${query}`;
    const gateway = await Gateway.start(
      ownTokensEnv({
        UPSTREAMS: JSON.stringify({ notes: { url, title: 'Notes', userSupplied: true } }),
      }),
    );
    gateway.routes.set(url, (request) => realFetch(request));
    return gateway;
  }

  it.each<Kind>(['sessions', 'both', 'modern'])('at login, refuses a wrong token and takes the right one (%s upstream)', async (kind) => {
    const gateway = await gatewayFor(kind);
    const step = await toTokenStep(gateway);
    expect(step.page.status).toBe(200);
    const refused = await pasteToken(gateway, step.browser, stepState(await step.page.text()), 'notes_wrong_token');
    expect(refused.status).toBe(400);
    const html = await refused.text();
    expect(html).toContain('That token was refused by Notes');

    const accepted = await pasteToken(gateway, step.browser, stepState(html), ALICE_TOKEN);
    expect(accepted.status).toBe(302);
    expect(new URL(accepted.headers.get('Location') ?? '').searchParams.get('code')).toBeTruthy();
    await env.OAUTH_KV.delete('user-token:notes:alice@example.com');
  });

  it('refuses a wrong token on a 2026-07-28 server whose server/discover answers without one', async () => {
    const gateway = await gatewayFor('modern', '&discover=public');
    const step = await toTokenStep(gateway);
    const refused = await pasteToken(gateway, step.browser, stepState(await step.page.text()), 'notes_wrong_token');
    expect(refused.status).toBe(400);
    const html = await refused.text();
    expect(html).toContain('That token was refused by Notes');
    expect((await pasteToken(gateway, step.browser, stepState(html), ALICE_TOKEN)).status).toBe(302);
    await env.OAUTH_KV.delete('user-token:notes:alice@example.com');
  });

  it.each<Kind>(['sessions', 'modern'])('on /connections, refuses a wrong token and saves the right one (%s upstream)', async (kind) => {
    const gateway = await gatewayFor(kind);
    const { browser, page } = await openConnections(gateway);
    expect(page.status).toBe(200);
    const csrf = csrfOf(await page.text());
    const refused = await connectionsPost(gateway, browser, { csrf, action: 'replace-token', upstream: 'notes', token: 'notes_wrong' });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('That token was refused by Notes');
    expect((await connectionsPost(gateway, browser, { csrf, action: 'replace-token', upstream: 'notes', token: ALICE_TOKEN })).status).toBe(303);
    expect(await env.OAUTH_KV.get('user-token:notes:alice@example.com')).not.toBeNull();
    await env.OAUTH_KV.delete('user-token:notes:alice@example.com');
  });
});

describe('issue #18: what the gateway remembers of an upstream’s revision', () => {
  /** A gateway whose notes upstream (a URL of its own: the isolate remembers) is served by the test server's `kind` for now. */
  async function upgradable(t: string) {
    const NOTES = `https://notes-upgraded.example/mcp?t=${t}`;
    const gateway = await Gateway.start(ownTokensEnv({ UPSTREAMS: JSON.stringify({ notes: { url: NOTES, title: 'Notes', userSupplied: true } }) }));
    const serveAs = (kind: Kind, query = '') =>
      gateway.routes.set(NOTES, (request) => realFetch(new Request(`${upstreamOrigin()}/kinds/${kind}/mcp?accept=${ALICE_TOKEN}&t=${t}${query}`, request)));
    return { gateway, serveAs };
  }
  /** How many server/discover requests the upstream received for `t` (asked with the real fetch: the Gateway fixture stubs it). */
  const discovers = async (t: string) => {
    const got = (await (await realFetch(`${upstreamOrigin()}/__/received?t=${t}&n=0`)).json()) as ReceivedRequest[] | null;
    return (got ?? []).filter((r) => r.body.includes('"server/discover"')).length;
  };

  it('asks server/discover once within five minutes, and again after', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const t = tag();
      const { gateway, serveAs } = await upgradable(t);
      // server/discover answers without a token here, so a refused token still teaches the revision.
      serveAs('modern', '&discover=public');
      const step = await toTokenStep(gateway);
      const refused = await pasteToken(gateway, step.browser, stepState(await step.page.text()), 'notes_wrong_token');
      const html = await refused.text();
      expect(await discovers(t)).toBe(1);
      vi.advanceTimersByTime(4 * 60_000);
      const again = await pasteToken(gateway, step.browser, stepState(html), 'notes_wrong_token_2');
      expect(again.status).toBe(400);
      expect(await discovers(t)).toBe(1);
      vi.advanceTimersByTime(2 * 60_000);
      expect((await pasteToken(gateway, step.browser, stepState(await again.text()), ALICE_TOKEN)).status).toBe(302);
      expect(await discovers(t)).toBe(2);
      await env.OAUTH_KV.delete('user-token:notes:alice@example.com');
    } finally {
      vi.useRealTimers();
    }
  });

  it('asks again, rather than fail, when an upstream it knew as 2025-era now speaks only 2026-07-28', async () => {
    const t = tag();
    const { gateway, serveAs } = await upgradable(t);
    // A refused token teaches the revision only when server/discover answers without one.
    serveAs('sessions', '&discover=public');
    const step = await toTokenStep(gateway);
    const refused = await pasteToken(gateway, step.browser, stepState(await step.page.text()), 'notes_wrong_token');
    expect(refused.status).toBe(400);
    serveAs('modern');
    expect((await pasteToken(gateway, step.browser, stepState(await refused.text()), ALICE_TOKEN)).status).toBe(302);
    expect(await discovers(t)).toBe(2);
    await env.OAUTH_KV.delete('user-token:notes:alice@example.com');
  });

  it('asks again, rather than fail, when an upstream it knew as 2026-07-28 now speaks 2025 with sessions', async () => {
    const t = tag();
    const { gateway, serveAs } = await upgradable(t);
    serveAs('modern', '&discover=public');
    const step = await toTokenStep(gateway);
    const refused = await pasteToken(gateway, step.browser, stepState(await step.page.text()), 'notes_wrong_token');
    expect(refused.status).toBe(400);
    serveAs('sessions');
    expect((await pasteToken(gateway, step.browser, stepState(await refused.text()), ALICE_TOKEN)).status).toBe(302);
    expect(await discovers(t)).toBe(2);
    await env.OAUTH_KV.delete('user-token:notes:alice@example.com');
  });
});

describe('issue #18: the headers a 2026-07-28 request carries', () => {
  it.each([
    ['plain', 'get_issue', 'called get_issue'],
    ['base64 (not plain ASCII)', 'überprüfen', undefined],
  ])('names the tool in Mcp-Name (%s), as the server checks it against the body', async (_, name, text) => {
    const t = tag();
    const headers = new Headers({ 'MCP-Protocol-Version': MODERN_PROTOCOL_VERSION });
    const link = { url: new URL(`${upstreamOrigin()}/kinds/modern/mcp?t=${t}`), headers, timeoutMs: 10_000 };
    const called = await callUpstream(link, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: {} } });
    expect(called.outcome).toBe('response');
    const answer = called.outcome === 'response' ? (called.answer as Message | undefined) : undefined;
    // A header the server could not match to the body would be -32020 (HeaderMismatch).
    expect(answer?.error?.code).not.toBe(-32020);
    if (text) expect(answer?.result?.content?.[0]?.text).toBe(text);
    const [sent] = await received(t);
    expect(sent?.headers['mcp-method']).toBe('tools/call');
    expect(sent?.headers['mcp-name']).toBe(text ? name : `=?base64?${btoa(String.fromCharCode(...new TextEncoder().encode(name)))}?=`);
  });
});

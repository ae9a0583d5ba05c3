import { env } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../src/config';
import { rewriteJsonRpcEvents } from '../src/lib';
import { rewriteListAnswers } from '../src/policy';
import { Gateway, gatewayEnv, mcpRequest, signIn, UPSTREAM_URL } from './fixtures/gateway';
import {
  annotate,
  CLIENT_HEADERS,
  callProxy,
  captureLogs,
  openSession,
  PAT,
  proxyConfig,
  proxyEnv,
  readRest,
  received,
  rpcPost,
  sseMessages,
  tag,
  upstreamOrigin,
} from './fixtures/proxy';

/**
 * Issue #9: the tool policy and rate limits, as a client sees them through the proxy, in front of
 * the real test upstream's `/tools/` server (six tools over two pages; see upstream-server.mjs).
 */

type Message = { jsonrpc: '2.0'; id?: unknown; result?: { tools?: Array<{ name: string }>; nextCursor?: string }; error?: { code: number; message: string } };

const list = (id: unknown = 1, cursor?: string) => ({ jsonrpc: '2.0', id, method: 'tools/list', params: cursor ? { cursor } : {} });
const call = (id: unknown, name: string, args: Record<string, unknown> = {}) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args },
});

/** A configuration fronting the `/tools/<format>/` server with `UPSTREAM_TOOLS` (and more). */
function toolsConfig(format: 'json' | 'sse', tools: object | undefined, more: Record<string, unknown> = {}) {
  return proxyConfig(`/tools/${format}/mcp`, { ...(tools ? { UPSTREAM_TOOLS: JSON.stringify(tools) } : {}), ...more });
}

const names = (message: Message | undefined) => message?.result?.tools?.map((t) => t.name);

beforeEach(() => {
  captureLogs();
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('tool policy: tools/list', () => {
  it('hides denied tools from a JSON answer and keeps nextCursor, so every page is filtered', async () => {
    const config = toolsConfig('json', { deny: ['delete_*', 'create_issue'] });
    const first = await callProxy({ config, path: `/mcp?t=${tag()}`, init: rpcPost(list(1)) });
    expect(first.status).toBe(200);
    const page1 = await first.json<Message>();
    expect(names(page1)).toEqual(['get_issue', 'search_code', 'list_commits']);
    expect(page1.result?.nextCursor).toBe('4');

    const second = await (await callProxy({ config, path: `/mcp?t=${tag()}`, init: rpcPost(list(2, '4')) })).json<Message>();
    expect(second.id).toBe(2);
    expect(names(second)).toEqual([]);
    expect(second.result?.nextCursor).toBeUndefined();
  });

  it('lists only the allowed tools, and everything without a policy', async () => {
    const allowed = await callProxy({ config: toolsConfig('json', { allow: ['get_*', 'search_*'] }), path: '/mcp', init: rpcPost(list()) });
    expect(names(await allowed.json<Message>())).toEqual(['get_issue', 'search_code']);
    const open = await callProxy({ config: toolsConfig('json', undefined), path: '/mcp', init: rpcPost(list()) });
    expect(names(await open.json<Message>())).toEqual(['get_issue', 'search_code', 'create_issue', 'list_commits']);
  });

  it('under readOnly lists only tools annotated readOnlyHint: true (not false, not missing)', async () => {
    const config = toolsConfig('json', { readOnly: true });
    const page1 = await (await callProxy({ config, path: '/mcp', init: rpcPost(list()) })).json<Message>();
    expect(names(page1)).toEqual(['get_issue', 'search_code']);
    const page2 = await (await callProxy({ config, path: '/mcp', init: rpcPost(list(2, '4')) })).json<Message>();
    expect(names(page2)).toEqual(['delete_file']);
  });

  it('filters a list answered as an SSE stream that arrives in pieces, keeping the event fields and line endings', async () => {
    const response = await callProxy({ config: toolsConfig('sse', { deny: ['create_*', 'list_*'] }), path: '/mcp', init: rpcPost(list(7)) });
    expect(response.headers.get('Content-Type')).toBe('text/event-stream');
    const text = await response.text();
    expect(text).toMatch(/^event: message\r\nid: 1\r\ndata: \{.*\}\r\n\r\n$/);
    const [message] = sseMessages<Message>(text);
    expect(message?.id).toBe(7);
    expect(names(message)).toEqual(['get_issue', 'search_code']);
    expect(message?.result?.nextCursor).toBe('4');
  });

  it('filters the list inside a batch answer and leaves the other answers alone, as JSON and as SSE', async () => {
    const batch = [list('a'), { jsonrpc: '2.0', id: 'b', method: 'ping' }];
    const json = await (await callProxy({ config: toolsConfig('json', { readOnly: true }), path: '/mcp', init: rpcPost(batch) })).json<Message[]>();
    expect(json.map((m) => m.id)).toEqual(['a', 'b']);
    expect(names(json[0])).toEqual(['get_issue', 'search_code']);
    expect(json[1]).toEqual({ jsonrpc: '2.0', id: 'b', result: {} });

    const sse = sseMessages<Message>(await (await callProxy({ config: toolsConfig('sse', { readOnly: true }), path: '/mcp', init: rpcPost(batch) })).text());
    expect(sse.map((m) => m.id)).toEqual(['a', 'b']);
    expect(names(sse[0])).toEqual(['get_issue', 'search_code']);
  });

  it('passes every other event byte for byte, and only rewrites the list', async () => {
    const t = tag();
    const body = [call(1, 'get_issue', { changeList: true }), list(2)];
    const plain = await (await callProxy({ config: toolsConfig('sse', undefined), path: `/mcp?t=${t}`, init: rpcPost(body) })).text();
    const filtered = await (await callProxy({ config: toolsConfig('sse', { deny: ['create_issue'] }), path: `/mcp?t=${t}`, init: rpcPost(body) })).text();
    const events = (text: string) => text.split('\r\n\r\n');
    // Progress, list_changed and the call's result pass unchanged; the fourth event is the list.
    expect(events(filtered).slice(0, 3)).toEqual(events(plain).slice(0, 3));
    expect(events(plain)[1]).toContain('notifications/tools/list_changed');
    expect(events(filtered)[3]).not.toEqual(events(plain)[3]);
    expect(names(sseMessages<Message>(filtered)[3])).toEqual(['get_issue', 'search_code', 'list_commits']);
  });

  it('applies the toolsFor entry of the person: an email beats its domain, which beats the default', async () => {
    const more = {
      UPSTREAM_TOOLS_FOR: JSON.stringify({
        '@maintainers.example': { deny: ['delete_*'] },
        'lead@maintainers.example': { allow: ['get_issue'] },
      }),
    };
    const config = toolsConfig('json', { readOnly: true }, more);
    const seen = async (email: string) => {
      const first = await (await callProxy({ config, email, path: '/mcp', init: rpcPost(list()) })).json<Message>();
      const second = await (await callProxy({ config, email, path: '/mcp', init: rpcPost(list(2, '4')) })).json<Message>();
      return [...(names(first) ?? []), ...(names(second) ?? [])];
    };
    expect(await seen('alice@example.com')).toEqual(['get_issue', 'search_code', 'delete_file']);
    expect(await seen('carol@maintainers.example')).toEqual(['get_issue', 'search_code', 'create_issue', 'list_commits']);
    expect(await seen('lead@maintainers.example')).toEqual(['get_issue']);
  });

  it('filters a tools/list answer replayed on a GET stream, recognised by its shape, and passes the rest', async () => {
    const init = { method: 'GET', headers: { ...CLIENT_HEADERS, Accept: 'text/event-stream', 'Last-Event-ID': 'r0' } };
    const plain = await (await callProxy({ config: toolsConfig('sse', undefined), path: '/mcp', init })).text();
    const filtered = await (await callProxy({ config: toolsConfig('sse', { deny: ['delete_*'] }), path: '/mcp', init })).text();
    const [before, replayed, after] = sseMessages<Message>(filtered);
    expect(names(replayed)).toEqual(['get_issue', 'search_code', 'create_issue', 'list_commits']);
    expect(filtered.split('\n\n')[0]).toBe(plain.split('\n\n')[0]);
    expect(filtered.split('\n\n')[2]).toBe(plain.split('\n\n')[2]);
    expect([before, after].map((m) => (m as { params?: { data?: string } }).params?.data)).toEqual(['before', 'after']);
  });
});

describe('tool policy: the SSE transform', () => {
  const rules = { allow: undefined, deny: [/^delete_.*$/], readOnly: false };
  const progress = 'id: 1\r\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\r\n\r\n';
  const listEvent = `event: message\r\nid: 2\r\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 9, result: { tools: [{ name: 'delete_x' }, { name: 'get_x' }] } })}\r\n\r\n`;

  it('passes each other event on as soon as its blank line arrives, and filters a list that arrives a byte at a time', async () => {
    let source!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (source = c) });
    const out = rewriteJsonRpcEvents(body, (m) => rewriteListAnswers(rules, m, { ids: new Set(['n:9']) })).getReader();
    const decoder = new TextDecoder();
    const bytes = new TextEncoder().encode(progress + listEvent);
    let seen = '';
    for (const byte of bytes.subarray(0, progress.length)) source.enqueue(Uint8Array.of(byte));
    // The progress event is complete: it comes out whole, before anything of the list is sent.
    while (!seen.endsWith('\r\n\r\n')) seen += decoder.decode((await out.read()).value, { stream: true });
    expect(seen).toBe(progress);
    for (const byte of bytes.subarray(progress.length)) source.enqueue(Uint8Array.of(byte));
    source.close();
    let rest = '';
    for (let r = await out.read(); !r.done; r = await out.read()) rest += decoder.decode(r.value, { stream: true });
    expect(rest).toBe(
      `event: message\r\nid: 2\r\ndata: {"jsonrpc":"2.0","id":9,"result":{"tools":[{"name":"get_x"}],"ttlMs":60000,"cacheScope":"private"}}\r\n\r\n`,
    );
  });

  it('ends the stream rather than pass on an event too large to check', async () => {
    const body = new Blob([`data: ${'x'.repeat(2_000)}`]).stream();
    const reader = rewriteJsonRpcEvents(body, () => undefined, { maxEventChars: 1_000 }).getReader();
    await expect(reader.read()).rejects.toThrow(/too large/);
  });
});

describe('tool policy: tools/call', () => {
  it('answers a call to a denied tool itself, with -32602 and the request id, and never contacts the upstream', async () => {
    const t = tag();
    const response = await callProxy({ config: toolsConfig('json', { deny: ['delete_*'] }), path: `/mcp?t=${t}`, init: rpcPost(call(42, 'delete_repo')) });
    expect(response.status).toBe(200);
    expect(response.headers.get('Content-Type')).toBe('application/json');
    const body = await response.json<Message>();
    expect(body).toEqual({ jsonrpc: '2.0', id: 42, error: { code: -32602, message: expect.stringContaining('delete_repo') } });
    expect(body.error?.message).toBe('tool delete_repo is not available through this gateway');
    expect(await received(t, 0)).toEqual([]);
  });

  it('refuses a tool outside allow, and one without a name', async () => {
    const t = tag();
    const config = toolsConfig('json', { allow: ['get_*'] });
    const outside = await (await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(call('x', 'search_code')) })).json<Message>();
    expect(outside.error?.code).toBe(-32602);
    const nameless = await (
      await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: {} }) })
    ).json<Message>();
    expect(nameless.error?.code).toBe(-32602);
    expect(await received(t, 0)).toEqual([]);
  });

  it('forwards an allowed call and streams its progress before its result', async () => {
    const t = tag();
    const response = await callProxy({ config: toolsConfig('sse', { deny: ['delete_*'] }), path: `/mcp?t=${t}`, init: rpcPost(call(5, 'get_issue')) });
    const messages = sseMessages<Message>(await response.text());
    expect(messages.map((m) => (m as { method?: string }).method ?? m.id)).toEqual(['notifications/progress', 5]);
    expect((await received(t)).map((r) => JSON.parse(r.body).params.name)).toEqual(['get_issue']);
  });

  it('in a batch, answers only the refused calls itself, forwards the rest, and merges both into one JSON answer', async () => {
    const t = tag();
    const batch = [call(1, 'get_issue'), call(2, 'delete_repo'), list(3), { jsonrpc: '2.0', method: 'notifications/cancelled', params: {} }];
    const response = await callProxy({ config: toolsConfig('json', { deny: ['delete_*'] }), path: `/mcp?t=${t}`, init: rpcPost(batch) });
    expect(response.status).toBe(200);
    const answers = await response.json<Message[]>();
    expect(answers.map((a) => a.id).sort()).toEqual([1, 2, 3]);
    expect(answers.find((a) => a.id === 2)?.error?.code).toBe(-32602);
    expect(answers.find((a) => a.id === 1)?.result).toBeDefined();
    expect(names(answers.find((a) => a.id === 3))).toEqual(['get_issue', 'search_code', 'create_issue', 'list_commits']);

    const [forwarded] = await received(t);
    const sent = JSON.parse(forwarded?.body ?? '[]') as Array<{ id?: unknown; method: string }>;
    expect(sent.map((m) => m.id ?? m.method)).toEqual([1, 3, 'notifications/cancelled']);
  });

  it('in a batch answered as SSE, sends the refusals as events of the same stream', async () => {
    const t = tag();
    const batch = [call(1, 'create_issue'), call(2, 'get_issue')];
    const response = await callProxy({ config: toolsConfig('sse', { readOnly: true }), path: `/mcp?t=${t}`, init: rpcPost(batch) });
    expect(response.headers.get('Content-Type')).toBe('text/event-stream');
    const messages = sseMessages<Message>(await response.text());
    expect(messages.find((m) => m.id === 1)?.error?.code).toBe(-32602);
    expect(messages.find((m) => m.id === 2)?.result).toBeDefined();
    // The gateway fetched the list for the annotations, then forwarded only the allowed call.
    const bodies = (await received(t, 2)).map((r) => JSON.parse(r.body));
    expect(bodies.at(-1)).toEqual([call(2, 'get_issue')]);
  });

  it('answers a batch that is entirely refused without contacting the upstream', async () => {
    const t = tag();
    const batch = [call(1, 'delete_repo'), call(2, 'delete_file')];
    const response = await callProxy({ config: toolsConfig('json', { deny: ['delete_*'] }), path: `/mcp?t=${t}`, init: rpcPost(batch) });
    expect(response.status).toBe(200);
    const answers = await response.json<Message[]>();
    expect(answers.map((a) => [a.id, a.error?.code])).toEqual([
      [1, -32602],
      [2, -32602],
    ]);
    expect(await received(t, 0)).toEqual([]);
  });

  it('refuses a request whose JSON-RPC content cannot be read, and forwards nothing', async () => {
    const t = tag();
    const config = toolsConfig('json', { deny: ['delete_*'] });
    const huge = JSON.stringify(call(1, 'delete_repo', { padding: 'x'.repeat(1024 * 1024) }));
    const tooLarge = await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(JSON.parse(huge)) });
    expect(tooLarge.status).toBe(400);
    expect((await tooLarge.json<Message>()).error?.code).toBe(-32600);
    const notJson = await callProxy({
      config,
      path: `/mcp?t=${t}`,
      init: {
        method: 'POST',
        body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo"}',
        headers: { ...CLIENT_HEADERS, 'Content-Type': 'application/json' },
      },
    });
    expect(notJson.status).toBe(400);
    expect(await received(t, 0)).toEqual([]);
  });

  it('reads a body of unknown length (no Content-Length) and still enforces the policy', async () => {
    const t = tag();
    const bytes = new TextEncoder().encode(JSON.stringify(call(9, 'delete_repo')));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
    const response = await callProxy({
      config: toolsConfig('json', { deny: ['delete_*'] }),
      path: `/mcp?t=${t}`,
      init: { method: 'POST', body, headers: { ...CLIENT_HEADERS, 'Content-Type': 'application/json' }, duplex: 'half' } as RequestInit,
    });
    expect((await response.json<Message>()).error?.code).toBe(-32602);
    expect(await received(t, 0)).toEqual([]);
  });

  it('writes the tool name and tool_refused to the log line', async () => {
    const logs = captureLogs();
    await callProxy({ config: toolsConfig('json', { deny: ['delete_*'] }), path: '/mcp', init: rpcPost(call(1, 'delete_repo')) });
    await callProxy({ config: toolsConfig('json', { deny: ['delete_*'] }), path: '/mcp', init: rpcPost(call(2, 'get_issue')) });
    const lines = logs.parsed().filter((l) => l.event === 'mcp_proxy');
    expect(lines.map((l) => [l.rpcMethod, l.tool, l.outcome, l.status])).toEqual([
      ['tools/call', 'delete_repo', 'tool_refused', 200],
      ['tools/call', 'get_issue', 'ok', 200],
    ]);
  });
});

describe('tool policy: readOnly calls', () => {
  it('lets through a tool annotated read-only and refuses one annotated false or not annotated, fetching the list with the caller credential', async () => {
    const t = tag();
    const config = toolsConfig('json', { readOnly: true });
    const headers = { 'Mcp-Session-Id': (await openSession(config)).handle };
    const ok = await (await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(call(1, 'delete_file'), headers) })).json<Message>();
    expect(ok.result).toBeDefined();
    const no = await (await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(call(2, 'create_issue'), headers) })).json<Message>();
    expect(no.error?.code).toBe(-32602);
    const unknown = await (await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(call(3, 'list_commits'), headers) })).json<Message>();
    expect(unknown.error?.code).toBe(-32602);
    const missing = await (await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(call(4, 'not_a_tool'), headers) })).json<Message>();
    expect(missing.error?.code).toBe(-32602);

    // Two list pages (fetched once, then cached), then the one allowed call; nothing else.
    const got = await received(t, 3);
    expect(got.map((r) => JSON.parse(r.body).method)).toEqual(['tools/list', 'tools/list', 'tools/call']);
    expect(JSON.parse(got[1]?.body ?? '{}').params).toEqual({ cursor: '4' });
    for (const request of got) {
      expect(request.headers.authorization).toBe(`Bearer ${PAT}`);
      // The upstream's own id (the /tools/ server's), never the client's handle (issue #16).
      expect(request.headers['mcp-session-id']).toBe('sess-tools');
    }
  });

  it('refuses the call when the annotations cannot be had', async () => {
    const config = proxyConfig('/status/500/mcp', { UPSTREAM_TOOLS: JSON.stringify({ readOnly: true }) });
    const t = tag();
    const response = await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(call(1, 'get_issue')) });
    expect((await response.json<Message>()).error?.code).toBe(-32602);
    expect((await received(t)).map((r) => JSON.parse(r.body).method)).toEqual(['tools/list']);
  });

  it('judges a tool by the newest list that passed through, and by a fresh one once the cache is stale', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t = tag();
    const config = toolsConfig('json', { readOnly: true });
    const callGetIssue = async (id: number) => (await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(call(id, 'get_issue')) })).json<Message>();

    expect((await callGetIssue(1)).result).toBeDefined();
    // Upstream, get_issue is no longer read-only; a client's own list brings the news.
    await annotate(t, 'get_issue', false);
    expect((await callGetIssue(2)).result, 'still cached').toBeDefined();
    const listed = await (await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(list(3)) })).json<Message>();
    expect(names(listed)).not.toContain('get_issue');
    expect((await callGetIssue(4)).error?.code).toBe(-32602);

    // Read-only again upstream: after the cache's minute, the gateway asks again.
    await annotate(t, 'get_issue', true);
    expect((await callGetIssue(5)).error?.code, 'the newest list said false').toBe(-32602);
    vi.setSystemTime(Date.now() + 61_000);
    expect((await callGetIssue(6)).result).toBeDefined();
  });

  it('passes notifications/tools/list_changed through and refetches the annotations after it', async () => {
    const t = tag();
    const config = toolsConfig('sse', { readOnly: true });
    const first = await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(call(1, 'get_issue', { changeList: true })) });
    const text = await readRest(first.body!.getReader());
    expect(text).toContain('notifications/tools/list_changed');
    await annotate(t, 'get_issue', 'none');
    const second = await (await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(call(2, 'get_issue')) })).json<Message>();
    expect(second.error?.code, 'the new list has no annotations for it').toBe(-32602);
  });
});

describe('tool policy: configuration', () => {
  const problems = (overrides: Record<string, unknown>) => {
    try {
      proxyConfig('/json/mcp', overrides);
    } catch (error) {
      if (error instanceof ConfigError) return error.problems.map((p) => p.variable);
      throw error;
    }
    return [];
  };

  it('names the field of a malformed policy', () => {
    expect(problems({ UPSTREAM_TOOLS: '{"deny":"delete_*"}' })).toEqual(['UPSTREAM_TOOLS.deny']);
    expect(problems({ UPSTREAM_TOOLS: 'not json' })).toEqual(['UPSTREAM_TOOLS']);
    expect(problems({ UPSTREAM_TOOLS: '{"readOnly":"yes","hide":[]}' })).toEqual(['UPSTREAM_TOOLS.hide', 'UPSTREAM_TOOLS.readOnly']);
    expect(problems({ UPSTREAM_TOOLS_FOR: '{"@example.com":{"allow":[1]}}' })).toEqual(['UPSTREAM_TOOLS_FOR.@example.com.allow']);
    expect(problems({ UPSTREAM_TOOLS_FOR: '{"nobody":{}}' })).toEqual(['UPSTREAM_TOOLS_FOR']);
    expect(problems({ UPSTREAM_RATE_LIMIT: '{"requests":0,"period":60}', RATE_LIMITER: env.RATE_LIMITER })).toEqual(['UPSTREAM_RATE_LIMIT.requests']);
    expect(problems({ UPSTREAM_RATE_LIMIT: '{"requests":10,"period":60}' })).toEqual(['UPSTREAM_RATE_LIMIT']);
    const upstreams = JSON.stringify({
      github: { url: 'https://api.githubcopilot.com/mcp/', token: 'GH', tools: { deny: ['bad name'] }, rateLimit: { requests: 5, period: 0 } },
    });
    expect(problems({ UPSTREAMS: upstreams, GH: 'x', RATE_LIMITER: env.RATE_LIMITER })).toEqual([
      'UPSTREAMS.github.tools.deny',
      'UPSTREAMS.github.rateLimit.period',
    ]);
  });

  it('accepts the documented example', () => {
    const config = loadConfig({
      ...proxyEnv('/json/mcp'),
      UPSTREAMS: JSON.stringify({
        github: {
          url: 'https://api.githubcopilot.com/mcp/',
          token: 'GITHUB_TOKEN',
          tools: { readOnly: true },
          toolsFor: { '@maintainers.example': { deny: ['delete_*'] } },
          rateLimit: { requests: 120, period: 60 },
        },
      }),
      GITHUB_TOKEN: 'ghp_x',
      RATE_LIMITER: env.RATE_LIMITER,
    });
    const github = config.upstreams.find((u) => u.name === 'github');
    expect(github?.tools?.fallback?.readOnly).toBe(true);
    expect(github?.tools?.domains.get('maintainers.example')?.readOnly).toBe(false);
    expect(github?.rateLimit).toMatchObject({ requests: 120, periodSeconds: 60 });
  });
});

describe('rate limits', () => {
  it('answers 429 with Retry-After and a JSON-RPC error once a person is over the limit; others and other upstreams are unaffected', async () => {
    const rate = JSON.stringify({ requests: 3, period: 60 });
    const config = proxyConfig('/json/mcp', {
      UPSTREAM_RATE_LIMIT: rate,
      UPSTREAMS: JSON.stringify({ other: { url: `${upstreamOrigin()}/json/other`, token: 'OTHER_TOKEN' } }),
      OTHER_TOKEN: 'other-pat',
      RATE_LIMITER: env.RATE_LIMITER,
    });
    const me = `runaway-${tag()}@example.com`;
    const t = tag();
    const ping = (id: number) => rpcPost({ jsonrpc: '2.0', id, method: 'ping' });
    for (const id of [1, 2, 3]) expect((await callProxy({ config, email: me, path: `/mcp?t=${t}`, init: ping(id) })).status).toBe(200);

    const limited = await callProxy({ config, email: me, path: `/mcp?t=${t}`, init: ping(4) });
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get('Retry-After'));
    // 3 per 60 s: the next request is allowed 20 s after the first.
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(20);
    const body = await limited.json<{ id: number; error: { code: number; message: string; data: { retryAfter: number } } }>();
    expect(body.id).toBe(4);
    expect(body.error.data.retryAfter).toBe(retryAfter);
    expect(body.error.message).toContain(`retry in ${retryAfter} s`);
    expect(await received(t, 0)).toHaveLength(3);

    expect((await callProxy({ config, email: `someone-else-${tag()}@example.com`, path: '/mcp', init: ping(5) })).status).toBe(200);
    expect((await callProxy({ config, email: me, path: '/other/mcp', init: ping(6) })).status).toBe(200);
  });
});

describe('issue #17: the session is checked before the rate limit', () => {
  it("refuses a session handle that is not the person's with 404 and uses none of their allowance", async () => {
    const config = proxyConfig('/json/mcp', { UPSTREAM_RATE_LIMIT: JSON.stringify({ requests: 2, period: 60 }), RATE_LIMITER: env.RATE_LIMITER });
    const me = `forged-${tag()}@example.com`;
    const t = tag();
    const ping = (id: number, headers: Record<string, string> = {}) => rpcPost({ jsonrpc: '2.0', id, method: 'ping' }, headers);
    for (const id of [1, 2, 3]) {
      const refused = await callProxy({ config, email: me, path: `/mcp?t=${t}`, init: ping(id, { 'Mcp-Session-Id': 'not-a-handle' }) });
      expect(refused.status).toBe(404);
      expect((await refused.json<{ error: { code: number } }>()).error.code).toBe(-32001);
    }
    for (const id of [4, 5]) expect((await callProxy({ config, email: me, path: `/mcp?t=${t}`, init: ping(id) })).status).toBe(200);
    expect((await callProxy({ config, email: me, path: `/mcp?t=${t}`, init: ping(6) })).status).toBe(429);
    expect(await received(t, 0)).toHaveLength(2);
  });
});

describe('tool policy and rate limits through the Worker', () => {
  let gateway: Gateway;
  const upstreamSaw: unknown[] = [];
  beforeEach(async () => {
    upstreamSaw.length = 0;
    gateway = await Gateway.start(
      gatewayEnv({
        UPSTREAM_TOOLS: JSON.stringify({ readOnly: true }),
        UPSTREAM_TOOLS_FOR: JSON.stringify({ '@maintainers.example': { deny: ['delete_*'] } }),
        UPSTREAM_RATE_LIMIT: JSON.stringify({ requests: 4, period: 60 }),
      }),
    );
    gateway.routes.set(UPSTREAM_URL, async (request) => {
      const message = await request.json<{ id: unknown; method: string }>();
      upstreamSaw.push(message);
      if (message.method !== 'tools/list') return Response.json({ jsonrpc: '2.0', id: message.id, result: { content: [] } });
      return Response.json({ jsonrpc: '2.0', id: message.id, result: { tools: WORKER_TOOLS } });
    });
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('shows a person the tools of their policy, refuses the others, and then limits their rate', async () => {
    const alice = (await signIn(gateway, { login: { email: `alice-${tag()}@example.com` } })).tokens.access_token;
    const listed = await (await mcpRequest(gateway, alice, list(1))).json<Message>();
    expect(names(listed)).toEqual(['get_issue']);
    const refused = await mcpRequest(gateway, alice, call(2, 'delete_repo'));
    expect(refused.status).toBe(200);
    expect((await refused.json<Message>()).error).toMatchObject({ code: -32602, message: 'tool delete_repo is not available through this gateway' });
    expect(upstreamSaw.map((m) => (m as { method: string }).method)).toEqual(['tools/list']);

    const maintainer = (await signIn(gateway, { login: { email: `carol-${tag()}@maintainers.example` } })).tokens.access_token;
    expect(names(await (await mcpRequest(gateway, maintainer, list(1))).json<Message>())).toEqual(['get_issue', 'create_issue']);

    // Alice's fourth and fifth requests: the limit is 4 a minute, per person.
    expect((await mcpRequest(gateway, alice, call(3, 'get_issue'))).status).toBe(200);
    expect((await mcpRequest(gateway, alice, call(4, 'get_issue'))).status).toBe(200);
    const limited = await mcpRequest(gateway, alice, call(5, 'get_issue'));
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('Retry-After'))).toBeGreaterThan(0);
    expect((await limited.json<Message>()).error?.code).toBe(-32006);
    expect((await mcpRequest(gateway, maintainer, list(2))).status).toBe(200);
  });
});

const WORKER_TOOLS = [
  { name: 'get_issue', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true } },
  { name: 'create_issue', inputSchema: { type: 'object' }, annotations: { readOnlyHint: false } },
  { name: 'delete_repo', inputSchema: { type: 'object' } },
];

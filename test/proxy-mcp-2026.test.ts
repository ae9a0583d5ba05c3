import { env } from 'cloudflare:test';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { rewriteListAnswers } from '../src/policy';
import { methodsReceived, modernOrigin, publishToolsChanged } from './fixtures/modern';
import { callProxy, captureLogs, expectJsonRpcError, proxyConfig, readUntil, received, rpcPost, sseMessages, tag } from './fixtures/proxy';

/**
 * Issue #18: what MCP 2026-07-28 asks of an intermediary that reads the body, as a client sees it
 * through the proxy, in front of a real 2026-only upstream (the v2 SDK's server, see
 * fixtures/modern-upstream.mjs) and the test upstream's 2025-era `/tools/` server.
 */

const REVISION = '2026-07-28';
const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': REVISION,
  'io.modelcontextprotocol/clientInfo': { name: 'issue-18-test', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
};
const NAME_FIELD: Record<string, string> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri', 'tasks/get': 'taskId' };

type Message = {
  jsonrpc: '2.0';
  id?: unknown;
  method?: string;
  result?: { tools?: Array<{ name: string }>; ttlMs?: number; cacheScope?: string; resultType?: string; content?: Array<{ text: string }> };
  error?: { code: number; message: string };
};

/** A 2026-07-28 request: the per-request envelope in `_meta`. */
function modern(id: unknown, method: string, params: Record<string, unknown> = {}) {
  return { jsonrpc: '2.0', id, method, params: { ...params, _meta: ENVELOPE } };
}

/** `=?base64?…?=`, as the v2 SDK writes a header value that is not plain ASCII. */
function base64Sentinel(value: string): string {
  return `=?base64?${btoa(String.fromCharCode(...new TextEncoder().encode(value)))}?=`;
}

/**
 * The POST a v2 client sends: MCP-Protocol-Version, Mcp-Method and Mcp-Name mirroring the body;
 * `headers` replaces them (undefined leaves one out).
 */
function modernPost(message: ReturnType<typeof modern>, headers: Record<string, string | undefined> = {}): RequestInit {
  const field = NAME_FIELD[message.method];
  const value = field ? (message.params as Record<string, unknown>)[field] : undefined;
  const all: Record<string, string | undefined> = {
    'MCP-Protocol-Version': REVISION,
    'Mcp-Method': message.method,
    ...(typeof value === 'string' ? { 'Mcp-Name': /^[\x20-\x7e]+$/.test(value) ? value : base64Sentinel(value) } : {}),
    ...headers,
  };
  return rpcPost(message, Object.fromEntries(Object.entries(all).filter((entry): entry is [string, string] => entry[1] !== undefined)));
}

/** A configuration fronting the 2026-only upstream, with `UPSTREAM_TOOLS` when given. */
const modernConfig = (tools?: object, more: Record<string, unknown> = {}) =>
  proxyConfig('/mcp', { UPSTREAM_URL: `${modernOrigin()}/mcp`, ...(tools ? { UPSTREAM_TOOLS: JSON.stringify(tools) } : {}), ...more });

const call = (id: unknown, name: string, more: Record<string, unknown> = {}) => modern(id, 'tools/call', { name, arguments: {}, ...more });
const names = (message: Message) => message.result?.tools?.map((tool) => tool.name);

beforeEach(() => {
  captureLogs();
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('issue #18: the headers of a 2026-07-28 request agree with its body', () => {
  it('forwards a request whose headers mirror its body, plain or base64, with or without a policy', async () => {
    for (const tools of [undefined, { deny: ['delete_*'] }]) {
      const t = tag();
      const plain = await callProxy({ config: modernConfig(tools), path: `/mcp?t=${t}`, init: modernPost(call(1, 'get_issue')) });
      expect(plain.status).toBe(200);
      expect((await plain.json<Message>()).result?.content?.[0]?.text).toBe('issue #1');
      const encoded = await callProxy({
        config: modernConfig(tools),
        path: `/mcp?t=${t}`,
        init: modernPost(call(2, 'get_issue'), { 'Mcp-Name': base64Sentinel('get_issue') }),
      });
      expect(encoded.status).toBe(200);
      expect((await encoded.json<Message>()).result?.content?.[0]?.text).toBe('issue #1');
      expect(await methodsReceived(t)).toEqual(['tools/call', 'tools/call']);
    }
  });

  it.each([
    ['an Mcp-Method other than the body method', call(3, 'get_issue'), { 'Mcp-Method': 'tools/list' }],
    ['an Mcp-Name naming another tool than the body', call(3, 'delete_repo'), { 'Mcp-Name': 'get_issue' }],
    ['a base64 Mcp-Name naming another tool', call(3, 'café_menu'), { 'Mcp-Name': base64Sentinel('cafe_menu') }],
    ['a plain Mcp-Name for a name that is not ASCII', call(3, 'café_menu'), { 'Mcp-Name': 'caf_menu' }],
    ['an Mcp-Name that is not valid base64', call(3, 'get_issue'), { 'Mcp-Name': '=?base64?Z2V0X2lzc3Vl*?=' }],
    ['an Mcp-Name other than the prompt name', modern(3, 'prompts/get', { name: 'summary' }), { 'Mcp-Name': 'other' }],
    ['an Mcp-Name other than the resource URI', modern(3, 'resources/read', { uri: 'file:///a' }), { 'Mcp-Name': 'file:///b' }],
    ['an Mcp-Name other than the task id', modern(3, 'tasks/get', { taskId: 'task-1' }), { 'Mcp-Name': 'task-2' }],
    ['no Mcp-Method', call(3, 'get_issue'), { 'Mcp-Method': undefined }],
    ['no Mcp-Name on a tools/call', call(3, 'get_issue'), { 'Mcp-Name': undefined }],
    ['no MCP-Protocol-Version beside the envelope', call(3, 'get_issue'), { 'MCP-Protocol-Version': undefined }],
    ['an MCP-Protocol-Version other than the envelope', call(3, 'get_issue'), { 'MCP-Protocol-Version': '2025-11-25' }],
  ])('answers %s with 400 -32020 and the id, and sends nothing upstream', async (_, message, headers) => {
    for (const tools of [undefined, { allow: ['get_*', 'café_*', 'delete_*'] }]) {
      const t = tag();
      const response = await callProxy({ config: modernConfig(tools), path: `/mcp?t=${t}`, init: modernPost(message, headers) });
      await expectJsonRpcError(response, 400, -32020, 3);
      expect(await methodsReceived(t)).toEqual([]);
    }
  });

  it('requires the headers of a request named 2026-07-28 only by its MCP-Protocol-Version header', async () => {
    const t = tag();
    const bare = { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'get_issue', arguments: {} } };
    const response = await callProxy({ config: modernConfig(), path: `/mcp?t=${t}`, init: rpcPost(bare, { 'MCP-Protocol-Version': REVISION }) });
    await expectJsonRpcError(response, 400, -32020, 4);
    expect(await methodsReceived(t)).toEqual([]);
  });

  it('leaves a 2025 request without the headers as it was, and still refuses one whose Mcp-Method disagrees', async () => {
    const t = tag();
    const config = proxyConfig('/tools/json/mcp', { UPSTREAM_TOOLS: JSON.stringify({ deny: ['delete_*'] }) });
    const legacy = { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'get_issue', arguments: {} } };
    const passed = await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(legacy, { 'MCP-Protocol-Version': '2025-11-25' }) });
    expect(passed.status).toBe(200);
    expect((await passed.json<Message>()).result?.content?.[0]?.text).toBe('called get_issue');

    const lying = await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(legacy, { 'Mcp-Method': 'tools/list' }) });
    await expectJsonRpcError(lying, 400, -32020, 5);
    expect(await received(t, 0)).toHaveLength(1);
  });

  it('refuses a batch holding a 2026-07-28 message (that revision has no batches) and a batch carrying Mcp-Method', async () => {
    const t = tag();
    const config = proxyConfig('/tools/json/mcp');
    const withModern = await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost([modern(1, 'tools/list'), modern(2, 'ping')]) });
    await expectJsonRpcError(withModern, 400, -32600);
    const legacyBatch = [
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { jsonrpc: '2.0', id: 2, method: 'ping' },
    ];
    const labelled = await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(legacyBatch, { 'Mcp-Method': 'tools/list' }) });
    await expectJsonRpcError(labelled, 400, -32020);
    expect(await received(t, 0)).toEqual([]);
    expect((await callProxy({ config, path: `/mcp?t=${t}`, init: rpcPost(legacyBatch) })).status, 'a 2025 batch passes').toBe(200);
  });
});

describe('issue #18: the cache hints of lists', () => {
  it('marks a filtered 2026-07-28 tools/list private, for at most the 60 s the annotations are trusted, in the upstream order', async () => {
    const upstream = await (await callProxy({ config: modernConfig(), path: '/mcp', init: modernPost(modern(1, 'tools/list')) })).json<Message>();
    expect(upstream.result).toMatchObject({ cacheScope: 'public', ttlMs: 300_000 });
    expect(names(upstream)).toEqual(['get_issue', 'delete_repo', 'confirm_read']);

    const cases: Array<[object, string[]]> = [
      [{ deny: ['delete_*'] }, ['get_issue', 'confirm_read']],
      [{ readOnly: true }, ['get_issue', 'confirm_read']],
      // Judged per person even when nothing is removed: still not for shared caches.
      [{ deny: ['nothing_matches'] }, ['get_issue', 'delete_repo', 'confirm_read']],
    ];
    for (const [tools, expected] of cases) {
      const filtered = await (await callProxy({ config: modernConfig(tools), path: '/mcp', init: modernPost(modern(2, 'tools/list')) })).json<Message>();
      expect(filtered.result?.cacheScope).toBe('private');
      expect(filtered.result?.ttlMs).toBe(60_000);
      expect(filtered.result?.resultType).toBe('complete');
      expect(names(filtered)).toEqual(expected);
    }
  });

  it('keeps the upstream values of lists it does not filter, labels a filtered 2025 list too, and keeps a shorter ttlMs', async () => {
    const prompts = await (await callProxy({ config: modernConfig({ deny: ['delete_*'] }), path: '/mcp', init: modernPost(modern(1, 'prompts/list')) })).json<{
      result: { cacheScope: string; ttlMs: number };
    }>();
    expect(prompts.result).toMatchObject({ cacheScope: 'public', ttlMs: 300_000 });

    const config = proxyConfig('/tools/json/mcp', { UPSTREAM_TOOLS: JSON.stringify({ deny: ['delete_*'] }) });
    const listed = await (await callProxy({ config, path: '/mcp', init: rpcPost({ jsonrpc: '2.0', id: 1, method: 'tools/list' }) })).json<Message>();
    expect(listed.result).toMatchObject({ cacheScope: 'private', ttlMs: 60_000 });

    const rules = { allow: undefined, deny: [/^delete_/], readOnly: false };
    const answer = { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'get_x' }], ttlMs: 5_000, cacheScope: 'public' } };
    expect(rewriteListAnswers(rules, answer, { ids: new Set(['n:1']) })).toMatchObject({ result: { ttlMs: 5_000, cacheScope: 'private' } });
  });

  it('marks filtered lists private in an SSE answer and in batches, as JSON and as SSE', async () => {
    const list = (id: unknown) => ({ jsonrpc: '2.0', id, method: 'tools/list' });
    for (const format of ['json', 'sse']) {
      const config = proxyConfig(`/tools/${format}/mcp`, { UPSTREAM_TOOLS: JSON.stringify({ deny: ['delete_*'] }) });
      const single = await (await callProxy({ config, path: '/mcp', init: rpcPost(list(1)) })).text();
      const batch = await (await callProxy({ config, path: '/mcp', init: rpcPost([list('a'), { jsonrpc: '2.0', id: 'b', method: 'ping' }]) })).text();
      const messages = [single, batch].flatMap((text) => (format === 'json' ? [JSON.parse(text)].flat() : sseMessages(text))) as Message[];
      const lists = messages.filter((m) => m.result?.tools);
      expect(lists).toHaveLength(2);
      for (const m of lists) expect(m.result).toMatchObject({ cacheScope: 'private', ttlMs: 60_000 });
      expect(messages.find((m) => m.id === 'b')?.result).toEqual({});
    }
  });
});

describe('issue #18: the tool policy on 2026-07-28 shapes', () => {
  it('passes an input_required result and judges the retry with inputResponses like the first call', async () => {
    const t = tag();
    const config = modernConfig({ deny: ['delete_*'] });
    const first = await (await callProxy({ config, path: `/mcp?t=${t}`, init: modernPost(call(1, 'confirm_read')) })).json<Message>();
    expect(first.result?.resultType).toBe('input_required');
    const inputResponses = { confirm: { action: 'accept', content: { confirm: true } } };
    const retry = await (await callProxy({ config, path: `/mcp?t=${t}`, init: modernPost(call(2, 'confirm_read', { inputResponses })) })).json<Message>();
    expect(retry.result?.content?.[0]?.text).toBe('confirmed read');

    const denied = await (await callProxy({ config, path: `/mcp?t=${t}`, init: modernPost(call(3, 'delete_repo', { inputResponses })) })).json<Message>();
    expect(denied.error?.code).toBe(-32602);
    expect(denied.id).toBe(3);
    expect(await methodsReceived(t)).toEqual(['tools/call', 'tools/call']);
  });

  it('refuses a task-creating call of a denied tool like any call', async () => {
    const t = tag();
    const config = modernConfig({ deny: ['delete_*'] });
    const asTask = call(4, 'delete_repo', { task: { ttl: 60_000 } });
    asTask.params._meta = { ...ENVELOPE, 'io.modelcontextprotocol/tasks': { ttl: 60_000 } } as typeof ENVELOPE;
    const refused = await (await callProxy({ config, path: `/mcp?t=${t}`, init: modernPost(asTask) })).json<Message>();
    expect(refused).toMatchObject({ id: 4, error: { code: -32602 } });
    expect(await methodsReceived(t)).toEqual([]);
  });

  it('forgets the annotations when notifications/tools/list_changed arrives on a subscriptions/listen stream', async () => {
    const t = tag();
    const config = modernConfig({ readOnly: true });
    await (await callProxy({ config, path: `/mcp?t=${t}`, init: modernPost(modern(1, 'tools/list')) })).text();
    expect((await (await callProxy({ config, path: `/mcp?t=${t}`, init: modernPost(call(2, 'get_issue')) })).json<Message>()).result).toBeDefined();
    expect(await methodsReceived(t), 'the listed annotations were enough').toEqual(['tools/list', 'tools/call']);

    const listen = modern(3, 'subscriptions/listen', { notifications: { toolsListChanged: true } });
    const stream = await callProxy({ config, path: `/mcp?t=${t}`, init: modernPost(listen) });
    expect(stream.headers.get('Content-Type')).toMatch(/^text\/event-stream/);
    const reader = stream.body!.getReader();
    await readUntil(reader, 'notifications/subscriptions/acknowledged');
    await publishToolsChanged();
    await readUntil(reader, 'notifications/tools/list_changed');
    await reader.cancel();

    await (await callProxy({ config, path: `/mcp?t=${t}`, init: modernPost(call(4, 'get_issue')) })).text();
    expect((await methodsReceived(t)).slice(3), 'the gateway asked for the list again before the call').toContain('tools/list');
  });
});

describe('issue #18: sessionless requests, the rate limit and the log line', () => {
  it('counts 2026-07-28 requests, which carry no session, against the rate limit', async () => {
    const config = modernConfig(undefined, { UPSTREAM_RATE_LIMIT: JSON.stringify({ requests: 2, period: 60 }), RATE_LIMITER: env.RATE_LIMITER });
    const me = `stateless-${tag()}@example.com`;
    const statuses = [];
    for (const id of [1, 2, 3]) statuses.push((await callProxy({ config, email: me, path: '/mcp', init: modernPost(modern(id, 'tools/list')) })).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('names the protocol revision of each request, and never a forged one', async () => {
    const logs = captureLogs();
    const config = proxyConfig('/tools/json/mcp');
    await callProxy({ config: modernConfig(), path: '/mcp', init: modernPost(modern(1, 'tools/list')) });
    await callProxy({ config, path: '/mcp', init: rpcPost({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'MCP-Protocol-Version': '2025-11-25' }) });
    await callProxy({ config, path: '/mcp', init: rpcPost({ jsonrpc: '2.0', id: 3, method: 'initialize', params: { protocolVersion: '2025-06-18' } }) });
    const forged = modern(4, 'tools/list');
    forged.params._meta = { ...ENVELOPE, 'io.modelcontextprotocol/protocolVersion': '2026-07-28","email":"admin@example.com' };
    await callProxy({ config, path: '/mcp', init: rpcPost(forged) });
    const lines = logs.parsed().filter((line) => line.event === 'mcp_proxy');
    expect(lines.map((line) => line.protocolVersion)).toEqual([REVISION, '2025-11-25', '2025-06-18', '?']);
    expect(lines[3]).toMatchObject({ status: 400, outcome: 'header_mismatch' });
    expect(logs.lines().join('\n')).not.toContain('admin@example.com');
  });
});

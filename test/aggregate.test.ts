import { env } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { exposedName } from '../src/aggregate/naming';
import { TokenVault } from '../src/vault';
import { aggregateConfig, answerOf, callAggregate, legacyRequest, modernRequest, toolNames } from './fixtures/aggregate';
import { methodsReceived, modernOrigin, publishToolsChanged } from './fixtures/modern';
import { captureLogs, readUntil, received, rpcPost, tag, upstreamOrigin, upstreamSawAbort } from './fixtures/proxy';

/** The test upstream server's LONG_TOOL (aggregate-upstream.mjs). */
const LONG_TOOL = 'summarize_the_weekly_engineering_report_for_every_team_in_the_company_x';
const ALICE_TOKEN = 'gh_SECRET_alice_0123456789';
const BOB_TOKEN = 'gh_SECRET_bob_0123456789';
const SHARED = 'shared_SECRET_0123456789';
const TOKEN_KEY = 'token-encryption-key-0123456789abcdef0123';

/** Requests of the upstream under tag `t` whose body has this JSON-RPC method. */
async function methodsSeen(t: string): Promise<string[]> {
  const all = await received(t, 0);
  return all.flatMap((r) => {
    if (r.method !== 'POST') return [r.method];
    try {
      return [String((JSON.parse(r.body) as { method?: unknown }).method)];
    } catch {
      return ['(unparsed)'];
    }
  });
}

/** Two upstreams: `github` (2026-07-28 only, takes only alice's token) and `extra` (both eras, shared token). */
function twoUpstreams(options: { githubTools?: object; extraTools?: object } = {}) {
  const github = tag();
  const extra = tag();
  const { config, aggregate } = aggregateConfig(
    {
      github: {
        url: `${upstreamOrigin()}/kinds/modern/mcp?accept=${ALICE_TOKEN}&t=${github}`,
        title: 'GitHub',
        userTokens: 'GITHUB_TOKENS',
        ...(options.githubTools ? { toolsFor: options.githubTools } : {}),
      },
      extra: { url: `${upstreamOrigin()}/agg/mcp?t=${extra}`, token: 'EXTRA_TOKEN', ...(options.extraTools ? { toolsFor: options.extraTools } : {}) },
    },
    { GITHUB_TOKENS: JSON.stringify({ 'alice@example.com': ALICE_TOKEN, 'bob@example.com': BOB_TOKEN }), EXTRA_TOKEN: SHARED },
  );
  return { config, aggregate, tags: { github, extra } };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('issue #21: an aggregate lists and calls the tools of several upstreams', () => {
  it('lists every upstream tool under <upstream>_<tool> to a 2026-07-28 client, described with the upstream, long names shortened', async () => {
    captureLogs();
    const { config, aggregate } = twoUpstreams();
    const response = await callAggregate({ config, aggregate, init: modernRequest(1, 'tools/list') });
    expect(response.status).toBe(200);
    const answer = await answerOf(response);
    const tools = answer.result?.tools as Array<{ name: string; description: string }>;
    const names = tools.map((tool) => tool.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'github_get_issue',
        'github_create_issue',
        'github_list_commits',
        'extra_report_progress',
        'extra_echo_arguments',
        'extra_link_resource',
        exposedName('extra', LONG_TOOL),
      ]),
    );
    expect(names).toHaveLength(7);
    const long = exposedName('extra', LONG_TOOL);
    expect(long).toHaveLength(64);
    expect(long.startsWith('extra_summarize_the_weekly')).toBe(true);
    expect(tools.find((tool) => tool.name === 'github_get_issue')?.description).toBe('[GitHub] Read an issue');
    expect(tools.find((tool) => tool.name === 'extra_echo_arguments')?.description).toBe('[extra] Echoes');
    // Filtered per person: only that person's client may keep it.
    expect(answer.result?.cacheScope).toBe('private');
  });

  it('answers server/discover for 2026-07-28 clients, and refuses a request whose headers disagree with its body', async () => {
    captureLogs();
    const { config, aggregate } = twoUpstreams();
    const discovered = await answerOf(await callAggregate({ config, aggregate, init: modernRequest(1, 'server/discover') }));
    expect(discovered.result?.supportedVersions).toContain('2026-07-28');
    expect(discovered.result?.capabilities).toMatchObject({ tools: { listChanged: true }, prompts: { listChanged: true } });
    const init = modernRequest(2, 'tools/call', { name: 'extra_echo_arguments', arguments: { text: 'x' } });
    const mismatch = await callAggregate({
      config,
      aggregate,
      init: { ...init, headers: { ...(init.headers as Record<string, string>), 'Mcp-Name': 'github_create_issue' } },
    });
    expect(mismatch.status).toBe(400);
    expect((await mismatch.json<{ error: { code: number } }>()).error.code).toBe(-32020);
  });

  it('serves a 2025-11-25 client: initialize, then the same list', async () => {
    captureLogs();
    const { config, aggregate } = twoUpstreams();
    const init = await callAggregate({
      config,
      aggregate,
      init: rpcPost({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'old', version: '1' } },
      }),
    });
    expect(init.status).toBe(200);
    const opened = await answerOf(init);
    expect(opened.result?.protocolVersion).toBe('2025-11-25');
    expect(opened.result?.serverInfo).toMatchObject({ name: 'work', title: 'Work tools' });
    expect(await toolNames(await callAggregate({ config, aggregate, init: legacyRequest(2, 'tools/list') }))).toContain('github_get_issue');
  });

  it('routes a call to the upstream its name names, with the original name, the arguments and the progress token', async () => {
    captureLogs();
    const { config, aggregate, tags } = twoUpstreams();
    const params = { name: 'extra_echo_arguments', arguments: { text: 'hello' }, _meta: { progressToken: 'p-7' } };
    const answer = await answerOf(await callAggregate({ config, aggregate, init: modernRequest(3, 'tools/call', params) }));
    const echoed = JSON.parse((answer.result?.content as Array<{ text: string }> | undefined)?.[0]?.text ?? '{}');
    expect(echoed.arguments).toEqual({ text: 'hello' });
    expect(echoed.meta).toMatchObject({ progressToken: 'p-7' });
    const calls = (await received(tags.extra, 0)).filter((r) => r.body.includes('"tools/call"'));
    expect(calls).toHaveLength(1);
    expect(JSON.parse(calls[0]?.body ?? '{}').params.name).toBe('echo_arguments');
    expect(calls[0]?.headers.authorization).toBe(`Bearer ${SHARED}`);
    // Nothing reached the other upstream.
    expect(await methodsSeen(tags.github)).not.toContain('tools/call');
  });

  it('routes a shortened name through the upstream list to the tool it stands for', async () => {
    captureLogs();
    const { config, aggregate } = twoUpstreams();
    const answer = await answerOf(
      await callAggregate({ config, aggregate, init: modernRequest(4, 'tools/call', { name: exposedName('extra', LONG_TOOL), arguments: {} }) }),
    );
    expect(answer.result?.content).toEqual([{ type: 'text', text: `called ${LONG_TOOL}` }]);
  });

  it("answers the upstream's JSON-RPC error as the call's error", async () => {
    captureLogs();
    const { config, aggregate } = twoUpstreams();
    const response = await callAggregate({ config, aggregate, init: modernRequest(5, 'tools/call', { name: 'extra_no_such_tool', arguments: {} }) });
    expect(response.status).toBe(200);
    const answer = await answerOf(response);
    expect(answer.error?.code).toBe(-32602);
    expect(answer.error?.message).toContain('no_such_tool not found');
  });

  it('refuses a name that names no upstream of the aggregate', async () => {
    captureLogs();
    const { config, aggregate } = twoUpstreams();
    const answer = await answerOf(
      await callAggregate({ config, aggregate, init: modernRequest(6, 'tools/call', { name: 'linear_get_issue', arguments: {} }) }),
    );
    expect(answer.error?.code).toBe(-32602);
  });
});

describe('issue #21: each upstream keeps its own credential and policy per person', () => {
  it("sends each person's own credential, and bob sees fewer tools under his rules", async () => {
    const logs = captureLogs();
    const { config, aggregate, tags } = twoUpstreams({ extraTools: { 'bob@example.com': { allow: ['echo_*'] } } });
    const alice = await toolNames(await callAggregate({ config, aggregate, init: modernRequest(1, 'tools/list') }));
    expect(alice).toHaveLength(7);
    const bob = await toolNames(await callAggregate({ config, aggregate, init: modernRequest(1, 'tools/list'), email: 'bob@example.com' }));
    // GitHub refuses bob's token: left out, and named in the log; his rules leave one tool of `extra`.
    expect(bob).toEqual(['extra_echo_arguments']);
    expect(logs.parsed()).toContainEqual(
      expect.objectContaining({ event: 'aggregate_upstream_left_out', upstream: 'github', email: 'bob@example.com', reason: 'refused' }),
    );
    const authorizations = (await received(tags.github, 0)).map((r) => r.headers.authorization);
    expect(authorizations).toContain(`Bearer ${ALICE_TOKEN}`);
    expect(authorizations).toContain(`Bearer ${BOB_TOKEN}`);
  });

  it('applies readOnly from the upstream list: only read-only tools are listed, and others are refused when called', async () => {
    captureLogs();
    const { config, aggregate, tags } = twoUpstreams({ extraTools: { 'bob@example.com': { readOnly: true } } });
    const bob = await toolNames(await callAggregate({ config, aggregate, init: modernRequest(1, 'tools/list'), email: 'bob@example.com' }));
    expect(bob).toEqual([exposedName('extra', LONG_TOOL)]);
    const refused = await answerOf(
      await callAggregate({
        config,
        aggregate,
        init: modernRequest(2, 'tools/call', { name: 'extra_echo_arguments', arguments: { text: 'x' } }),
        email: 'bob@example.com',
      }),
    );
    expect(refused.error?.code).toBe(-32602);
    const allowed = await answerOf(
      await callAggregate({
        config,
        aggregate,
        init: modernRequest(3, 'tools/call', { name: exposedName('extra', LONG_TOOL), arguments: {} }),
        email: 'bob@example.com',
      }),
    );
    expect(allowed.result?.content).toEqual([{ type: 'text', text: `called ${LONG_TOOL}` }]);
    expect((await methodsSeen(tags.extra)).filter((m) => m === 'tools/call')).toHaveLength(1);
  });

  it('refuses a call of a tool the person may not see, and nothing goes upstream', async () => {
    captureLogs();
    const { config, aggregate, tags } = twoUpstreams({ extraTools: { 'bob@example.com': { allow: ['echo_*'] } } });
    const answer = await answerOf(
      await callAggregate({
        config,
        aggregate,
        init: modernRequest(2, 'tools/call', { name: 'extra_report_progress', arguments: {} }),
        email: 'bob@example.com',
      }),
    );
    expect(answer.error?.code).toBe(-32602);
    expect(await methodsSeen(tags.extra)).not.toContain('tools/call');
  });

  it("answers a call refused by the upstream's 401 as a JSON-RPC error naming it, never as a 401", async () => {
    captureLogs();
    const { config, aggregate } = twoUpstreams();
    const response = await callAggregate({
      config,
      aggregate,
      init: modernRequest(3, 'tools/call', { name: 'github_get_issue', arguments: {} }),
      email: 'bob@example.com',
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('WWW-Authenticate')).toBeNull();
    const answer = await answerOf(response);
    expect(answer.error?.code).toBe(-32003);
    expect(answer.error?.message).toContain('GitHub');
  });

  it('lists a userSupplied upstream without their token as one tool pointing to /connections, and a call says where to add it', async () => {
    captureLogs();
    const notes = tag();
    const { config, aggregate } = aggregateConfig(
      { notes: { url: `${upstreamOrigin()}/kinds/both/mcp?accept=notes_SECRET_alice&t=${notes}`, title: 'Notes', userSupplied: true } },
      { TOKEN_ENCRYPTION_KEY: TOKEN_KEY },
    );
    const listed = await answerOf(await callAggregate({ config, aggregate, init: modernRequest(1, 'tools/list'), email: 'carol@example.com' }));
    const tools = listed.result?.tools as Array<{ name: string; description: string }>;
    expect(tools.map((tool) => tool.name)).toEqual(['notes_add_token']);
    expect(tools[0]?.description).toContain('https://gw.example/connections');
    const called = await answerOf(
      await callAggregate({ config, aggregate, init: modernRequest(2, 'tools/call', { name: 'notes_get_issue', arguments: {} }), email: 'carol@example.com' }),
    );
    expect(called.error?.code).toBe(-32007);
    expect(called.error?.message).toContain('https://gw.example/connections');
    expect(await received(notes, 0)).toEqual([]);

    // With a token stored, the upstream's own tools, called with it.
    await new TokenVault(env.OAUTH_KV, config.tokenKeys).save('carol@example.com', 'notes', 'notes_SECRET_alice');
    const after = await toolNames(await callAggregate({ config, aggregate, init: modernRequest(3, 'tools/list'), email: 'carol@example.com' }));
    expect(after).toEqual(['notes_get_issue', 'notes_create_issue', 'notes_list_commits']);
  });
});

describe('issue #21: lists are asked in parallel, bounded, and cached', () => {
  it('leaves a slow upstream out of the list, answering within about its timeout, and names it in the log', async () => {
    const logs = captureLogs();
    const fast = tag();
    const { config, aggregate } = aggregateConfig(
      {
        fast: { url: `${upstreamOrigin()}/kinds/modern/mcp?t=${fast}`, token: 'FAST_TOKEN' },
        slow: { url: `${upstreamOrigin()}/stall/mcp?t=${tag()}`, token: 'FAST_TOKEN', timeout: 1 },
      },
      { FAST_TOKEN: SHARED },
    );
    const started = Date.now();
    const names = await toolNames(await callAggregate({ config, aggregate, init: modernRequest(1, 'tools/list') }));
    const elapsed = Date.now() - started;
    expect(names).toEqual(['fast_get_issue', 'fast_create_issue', 'fast_list_commits']);
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(5_000);
    expect(logs.parsed()).toContainEqual(expect.objectContaining({ event: 'aggregate_upstream_left_out', upstream: 'slow', reason: 'timeout' }));
  });

  it('asks five upstreams at once: a list takes about as long as the slowest, not their sum', async () => {
    captureLogs();
    const names = ['one', 'two', 'three', 'four', 'five'];
    const { config, aggregate } = aggregateConfig(
      Object.fromEntries(names.map((name) => [name, { url: `${upstreamOrigin()}/agg/mcp?t=${tag()}&delay=400`, token: 'T' }])),
      { T: SHARED },
    );
    // The first request of a test file loads the SDK (through vitest's transform): not what is measured.
    await toolNames(await callAggregate({ config, aggregate, init: modernRequest(1, 'tools/list') }));
    // The upstreams say `ttlMs: 0`: every list asks all five again.
    const started = Date.now();
    const listed = await toolNames(await callAggregate({ config, aggregate, init: modernRequest(2, 'tools/list') }));
    const elapsed = Date.now() - started;
    expect(listed).toHaveLength(20);
    expect(elapsed).toBeGreaterThanOrEqual(400);
    // One after another would take at least 2 s.
    expect(elapsed).toBeLessThan(1_600);
  });

  it("keeps each upstream's list per person: a second list asks no upstream, another person's does", async () => {
    captureLogs();
    const t = tag();
    const { config, aggregate } = aggregateConfig({ old: { url: `${upstreamOrigin()}/kinds/sessions/mcp?t=${t}`, token: 'OLD_TOKEN' } }, { OLD_TOKEN: SHARED });
    const lists = async () => (await methodsSeen(t)).filter((m) => m === 'tools/list').length;
    await toolNames(await callAggregate({ config, aggregate, init: modernRequest(1, 'tools/list') }));
    await toolNames(await callAggregate({ config, aggregate, init: modernRequest(2, 'tools/list') }));
    expect(await lists()).toBe(1);
    await toolNames(await callAggregate({ config, aggregate, init: modernRequest(3, 'tools/list'), email: 'bob@example.com' }));
    expect(await lists()).toBe(2);
  });

  it('keeps no list an upstream says not to keep (ttlMs: 0, the v2 SDK default)', async () => {
    captureLogs();
    const { config, aggregate, tags } = twoUpstreams();
    await toolNames(await callAggregate({ config, aggregate, init: modernRequest(1, 'tools/list') }));
    await toolNames(await callAggregate({ config, aggregate, init: modernRequest(2, 'tools/list') }));
    expect((await methodsSeen(tags.extra)).filter((m) => m === 'tools/list')).toHaveLength(2);
  });

  it('ends the session it opened on a 2025 upstream with sessions', async () => {
    captureLogs();
    const t = tag();
    const { config, aggregate } = aggregateConfig({ old: { url: `${upstreamOrigin()}/kinds/sessions/mcp?t=${t}`, token: 'OLD_TOKEN' } }, { OLD_TOKEN: SHARED });
    expect(await toolNames(await callAggregate({ config, aggregate, init: modernRequest(1, 'tools/list') }))).toEqual([
      'old_get_issue',
      'old_create_issue',
      'old_list_commits',
    ]);
    expect(await methodsSeen(t)).toEqual(['server/discover', 'initialize', 'notifications/initialized', 'tools/list', 'DELETE']);
  });
});

describe('issue #21: calls stream and are logged', () => {
  it('relays progress as it comes, before the result', async () => {
    captureLogs();
    const { config, aggregate, tags } = twoUpstreams();
    const response = await callAggregate({
      config,
      aggregate,
      init: modernRequest(7, 'tools/call', { name: 'extra_report_progress', arguments: {}, _meta: { progressToken: 'tok-1' } }),
      noWait: true,
    });
    expect(response.headers.get('Content-Type')).toContain('text/event-stream');
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    const first = await readUntil(reader, '"progress":2', decoder);
    expect(first).toContain('"progressToken":"tok-1"');
    expect(first).not.toContain('report done');
    await fetch(`${upstreamOrigin()}/agg/release?t=${tags.extra}`, { method: 'POST' });
    const rest = await readUntil(reader, 'report done', decoder);
    expect(rest).toContain('"id":7');
    await reader.cancel();
  });

  it('logs each call with the upstream, its own tool name and the aggregate', async () => {
    const logs = captureLogs();
    const { config, aggregate } = twoUpstreams();
    await answerOf(await callAggregate({ config, aggregate, init: modernRequest(1, 'tools/call', { name: exposedName('extra', LONG_TOOL), arguments: {} }) }));
    expect(logs.parsed()).toContainEqual(
      expect.objectContaining({
        event: 'mcp_proxy',
        upstream: 'extra',
        tool: LONG_TOOL,
        aggregate: 'work',
        path: '/work/mcp',
        rpcMethod: 'tools/call',
        outcome: 'ok',
      }),
    );
    expect(logs.lines().join('\n')).not.toContain(SHARED);
  });
});

describe('issue #21: a call ends with its client', () => {
  it('aborts the upstream request when the client goes away mid-call', async () => {
    captureLogs();
    const { config, aggregate, tags } = twoUpstreams();
    const response = await callAggregate({
      config,
      aggregate,
      init: modernRequest(8, 'tools/call', { name: 'extra_report_progress', arguments: {}, _meta: { progressToken: 'tok-2' } }),
      noWait: true,
    });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await readUntil(reader, '"progress":1');
    await reader.cancel();
    await expect(upstreamSawAbort(tags.extra)).resolves.toEqual({ aborted: true });
  });
});

describe('issue #21: prompts are named and routed like tools', () => {
  it('lists each upstream prompt as <upstream>_<prompt> under the person rules, and gets it from its upstream', async () => {
    const logs = captureLogs();
    const t = tag();
    const { config, aggregate } = aggregateConfig(
      {
        mod: { url: `${modernOrigin()}/mcp?t=${t}`, title: 'Modern', token: 'MOD_TOKEN', toolsFor: { 'bob@example.com': { prompts: { deny: ['summary'] } } } },
        extra: { url: `${upstreamOrigin()}/agg/mcp?t=${tag()}`, token: 'MOD_TOKEN' },
      },
      { MOD_TOKEN: SHARED },
    );
    const listed = await answerOf(await callAggregate({ config, aggregate, init: modernRequest(1, 'prompts/list') }));
    expect(listed.result?.prompts).toEqual([expect.objectContaining({ name: 'mod_summary', description: '[Modern] Summarise' })]);
    // An upstream without prompts lists none, and is not reported as left out.
    expect(logs.parsed().filter((line) => line.event === 'aggregate_upstream_left_out')).toEqual([]);
    const got = await answerOf(await callAggregate({ config, aggregate, init: modernRequest(2, 'prompts/get', { name: 'mod_summary' }) }));
    expect(got.result?.messages).toEqual([{ role: 'user', content: { type: 'text', text: 'hi' } }]);
    expect(logs.parsed()).toContainEqual(
      expect.objectContaining({ event: 'mcp_proxy', rpcMethod: 'prompts/get', upstream: 'mod', aggregate: 'work', outcome: 'ok' }),
    );

    const bob = await answerOf(await callAggregate({ config, aggregate, init: modernRequest(3, 'prompts/list'), email: 'bob@example.com' }));
    expect(bob.result?.prompts).toEqual([]);
    const refused = await answerOf(
      await callAggregate({ config, aggregate, init: modernRequest(4, 'prompts/get', { name: 'mod_summary' }), email: 'bob@example.com' }),
    );
    expect(refused.error?.code).toBe(-32602);
  });
});

describe('issue #21: a 2025 client session maps to one upstream session per upstream', () => {
  const initialize = rpcPost({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'old', version: '1' } },
  });
  const inSession = (handle: string, init: RequestInit): RequestInit => ({
    ...init,
    headers: { ...(init.headers as Record<string, string>), 'Mcp-Session-Id': handle },
  });

  function sessionsUpstream() {
    const t = tag();
    const { config, aggregate } = aggregateConfig({ old: { url: `${upstreamOrigin()}/kinds/sessions/mcp?t=${t}`, token: 'OLD_TOKEN' } }, { OLD_TOKEN: SHARED });
    return { config, aggregate, t };
  }

  it('opens one upstream session for two parallel first calls, and DELETE ends it', async () => {
    captureLogs();
    const { config, aggregate, t } = sessionsUpstream();
    const opened = await callAggregate({ config, aggregate, init: initialize });
    expect(opened.status).toBe(200);
    const handle = opened.headers.get('Mcp-Session-Id');
    expect(handle).toMatch(/^[0-9a-f-]{36}\.[A-Za-z0-9_-]+$/);
    // A browser client (its Origin is on the request) may read it.
    expect(opened.headers.get('Access-Control-Allow-Origin')).toBe('http://localhost:6274');
    expect(opened.headers.get('Access-Control-Expose-Headers')).toContain('Mcp-Session-Id');
    await opened.body?.cancel();
    // Nothing upstream until a request needs it.
    expect(await methodsSeen(t)).toEqual([]);

    const call = (id: number) =>
      callAggregate({ config, aggregate, init: inSession(handle as string, legacyRequest(id, 'tools/call', { name: 'old_get_issue', arguments: {} })) });
    const answers = await Promise.all([call(2), call(3)]);
    for (const response of answers) expect((await answerOf(response)).result?.content).toEqual([{ type: 'text', text: 'called get_issue' }]);
    const seen = await methodsSeen(t);
    expect(seen.filter((m) => m === 'initialize')).toHaveLength(1);
    expect(seen.filter((m) => m === 'tools/call')).toHaveLength(2);
    expect(seen).not.toContain('DELETE');
    const sessionIds = new Set((await received(t, 0)).filter((r) => r.body.includes('tools/call')).map((r) => r.headers['mcp-session-id']));
    expect(sessionIds.size).toBe(1);

    const ended = await callAggregate({ config, aggregate, init: { method: 'DELETE', headers: { 'Mcp-Session-Id': handle as string } } });
    expect(ended.status).toBe(204);
    const deleted = (await received(t, 5)).filter((r) => r.method === 'DELETE');
    expect(deleted.map((r) => r.headers['mcp-session-id'])).toEqual([...sessionIds]);
    // The ended session is unknown from now on: the client starts a new one.
    const after = await callAggregate({ config, aggregate, init: inSession(handle as string, legacyRequest(4, 'tools/list')) });
    expect(after.status).toBe(404);
  });

  it('opens a new upstream session when the upstream no longer knows its own, and tries the request again', async () => {
    captureLogs();
    const { config, aggregate, t } = sessionsUpstream();
    const opened = await callAggregate({ config, aggregate, init: initialize });
    const handle = opened.headers.get('Mcp-Session-Id') as string;
    await opened.body?.cancel();
    const call = (id: number) =>
      callAggregate({ config, aggregate, init: inSession(handle, legacyRequest(id, 'tools/call', { name: 'old_get_issue', arguments: {} })) });
    await answerOf(await call(2));
    const first = (await received(t, 0)).find((r) => r.body.includes('tools/call'))?.headers['mcp-session-id'] as string;
    // The upstream ends its session behind the gateway's back.
    const gone = await fetch(`${upstreamOrigin()}/kinds/sessions/mcp?t=${tag()}`, {
      method: 'DELETE',
      headers: { 'Mcp-Session-Id': first, 'MCP-Protocol-Version': '2025-11-25' },
    });
    await gone.body?.cancel();
    expect((await answerOf(await call(3))).result?.content).toEqual([{ type: 'text', text: 'called get_issue' }]);
    const calls = (await received(t, 0)).filter((r) => r.body.includes('tools/call')).map((r) => r.headers['mcp-session-id']);
    expect(calls).toHaveLength(3);
    expect(calls[2]).not.toBe(first);
    expect((await methodsSeen(t)).filter((m) => m === 'initialize')).toHaveLength(2);
  });

  it("answers 404 for someone else's session handle or a forged one, and nothing goes upstream", async () => {
    captureLogs();
    const { config, aggregate, t } = sessionsUpstream();
    const opened = await callAggregate({ config, aggregate, init: initialize });
    const handle = opened.headers.get('Mcp-Session-Id') as string;
    await opened.body?.cancel();
    const list = legacyRequest(2, 'tools/list');
    const bobs = await callAggregate({ config, aggregate, init: inSession(handle, list), email: 'bob@example.com' });
    expect(bobs.status).toBe(404);
    expect((await bobs.json<{ error: { code: number } }>()).error.code).toBe(-32001);
    const forged = `${handle.slice(0, 36)}.${'A'.repeat(43)}`;
    expect((await callAggregate({ config, aggregate, init: inSession(forged, list) })).status).toBe(404);
    expect(await methodsSeen(t)).toEqual([]);
    // Its owner still has it.
    expect(await toolNames(await callAggregate({ config, aggregate, init: inSession(handle, list) }))).toContain('old_get_issue');
  });
});

describe('issue #21: an upstream list change reaches the client, and the next list is fresh', () => {
  /** Resolves once the modern upstream has received `method` under `t` (the gateway's watch is open). */
  async function untilReceived(t: string, method: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if ((await methodsReceived(t)).includes(method)) return;
      await scheduler.wait(25);
    }
    throw new Error(`the upstream never received ${method}`);
  }

  function modernAggregate() {
    const t = tag();
    const { config, aggregate } = aggregateConfig({ mod: { url: `${modernOrigin()}/mcp?t=${t}`, token: 'MOD_TOKEN' } }, { MOD_TOKEN: SHARED });
    return { config, aggregate, t };
  }

  it('sends notifications/tools/list_changed on subscriptions/listen to a 2026-07-28 client, and drops the cached list', async () => {
    captureLogs();
    const { config, aggregate, t } = modernAggregate();
    const lists = async () => (await methodsReceived(t)).filter((m) => m === 'tools/list').length;
    await toolNames(await callAggregate({ config, aggregate, init: modernRequest(1, 'tools/list') }));
    await toolNames(await callAggregate({ config, aggregate, init: modernRequest(2, 'tools/list') }));
    // The upstream says its list may be kept five minutes: asked once.
    expect(await lists()).toBe(1);

    const listen = await callAggregate({
      config,
      aggregate,
      init: modernRequest(3, 'subscriptions/listen', { notifications: { toolsListChanged: true } }),
      noWait: true,
    });
    expect(listen.headers.get('Content-Type')).toContain('text/event-stream');
    const reader = (listen.body as ReadableStream<Uint8Array>).getReader();
    await untilReceived(t, 'subscriptions/listen');
    await publishToolsChanged();
    await readUntil(reader, 'notifications/tools/list_changed');
    await reader.cancel();

    await toolNames(await callAggregate({ config, aggregate, init: modernRequest(4, 'tools/list') }));
    expect(await lists()).toBe(2);
  });

  it("sends it on a 2025 client session's GET stream", async () => {
    captureLogs();
    const { config, aggregate, t } = modernAggregate();
    const opened = await callAggregate({
      config,
      aggregate,
      init: rpcPost({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'old', version: '1' } },
      }),
    });
    const handle = opened.headers.get('Mcp-Session-Id') as string;
    await opened.body?.cancel();
    const stream = await callAggregate({
      config,
      aggregate,
      init: { method: 'GET', headers: { Accept: 'text/event-stream', 'Mcp-Session-Id': handle, 'MCP-Protocol-Version': '2025-11-25' } },
      noWait: true,
    });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('Content-Type')).toContain('text/event-stream');
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    await untilReceived(t, 'subscriptions/listen');
    await publishToolsChanged();
    const seen = await readUntil(reader, 'notifications/tools/list_changed');
    expect(seen).toContain('"jsonrpc":"2.0"');
    await reader.cancel();
  });
});

describe('issue #21: allowlists and rate limits stay per upstream', () => {
  it("leaves out an upstream the person is not allowed on, and charges a call to its own upstream's rate limit", async () => {
    captureLogs();
    const limited = tag();
    const { config, aggregate } = aggregateConfig(
      {
        limited: { url: `${upstreamOrigin()}/agg/mcp?t=${limited}`, token: 'T', rateLimit: { requests: 1, period: 3600 } },
        private: { url: `${upstreamOrigin()}/kinds/both/mcp?t=${tag()}`, token: 'T', allowedEmails: 'alice@example.com' },
      },
      { T: SHARED, RATE_LIMITER: env.RATE_LIMITER },
    );
    const bob = await toolNames(await callAggregate({ config, aggregate, init: modernRequest(1, 'tools/list'), email: 'bob@example.com' }));
    expect(bob.some((name) => name.startsWith('private_'))).toBe(false);
    expect(bob).toContain('limited_echo_arguments');
    const refused = await answerOf(
      await callAggregate({ config, aggregate, init: modernRequest(2, 'tools/call', { name: 'private_get_issue', arguments: {} }), email: 'bob@example.com' }),
    );
    expect(refused.error?.code).toBe(-32602);

    const email = `carol-${crypto.randomUUID()}@example.com`;
    const call = (id: number) => modernRequest(id, 'tools/call', { name: 'limited_echo_arguments', arguments: { text: 'x' } });
    expect((await answerOf(await callAggregate({ config, aggregate, init: call(3), email }))).result).toBeDefined();
    const second = await answerOf(await callAggregate({ config, aggregate, init: call(4), email }));
    expect(second.error?.code).toBe(-32006);
    expect(second.error?.message).toContain('limited');
    // The other upstream's allowance is untouched.
    expect(
      (
        await answerOf(
          await callAggregate({
            config,
            aggregate,
            init: modernRequest(5, 'tools/call', { name: 'private_get_issue', arguments: {} }),
            email: 'alice@example.com',
          }),
        )
      ).result,
    ).toBeDefined();
    // The client's own credentials never travel: only the upstream's.
    const calls = (await received(limited, 0)).filter((r) => r.body.includes('tools/call'));
    expect(calls).toHaveLength(1);
    expect(calls[0]?.headers.cookie).toBeUndefined();
    expect(calls[0]?.headers.authorization).toBe(`Bearer ${SHARED}`);
  });
});

describe('issue #21: resource URIs stay unique per upstream', () => {
  it('serves each upstream resource and template as <upstream>+<uri>, reads it from its upstream, and applies the person rules', async () => {
    captureLogs();
    const t = tag();
    const { config, aggregate } = aggregateConfig(
      { repo: { url: `${upstreamOrigin()}/tools/json/mcp?t=${t}`, token: 'T', toolsFor: { 'bob@example.com': { resources: { deny: ['*secret*'] } } } } },
      { T: SHARED },
    );
    const uris = async (email: string) => {
      const answer = await answerOf(await callAggregate({ config, aggregate, init: modernRequest(1, 'resources/list'), email }));
      return ((answer.result?.resources ?? []) as Array<{ uri: string }>).map((resource) => resource.uri);
    };
    expect(await uris('alice@example.com')).toEqual([
      'repo+repo://docs/readme',
      'repo+repo://secret/keys',
      'repo+file:///etc/passwd',
      'repo+repo://docs/secret-plan',
    ]);
    expect(await uris('bob@example.com')).toEqual(['repo+repo://docs/readme', 'repo+file:///etc/passwd']);
    const templates = await answerOf(await callAggregate({ config, aggregate, init: modernRequest(2, 'resources/templates/list') }));
    expect(((templates.result?.resourceTemplates ?? []) as Array<{ uriTemplate: string }>).map((template) => template.uriTemplate)).toEqual([
      'repo+repo://{owner}/{name}',
      'repo+file:///{path}',
    ]);

    const read = await answerOf(await callAggregate({ config, aggregate, init: modernRequest(3, 'resources/read', { uri: 'repo+repo://docs/readme' }) }));
    expect(read.result?.contents).toEqual([{ uri: 'repo+repo://docs/readme', text: 'contents of repo://docs/readme' }]);
    const reads = (await received(t, 0)).filter((r) => r.body.includes('"resources/read"'));
    expect(JSON.parse(reads[0]?.body ?? '{}').params.uri).toBe('repo://docs/readme');

    const refused = await answerOf(
      await callAggregate({ config, aggregate, init: modernRequest(4, 'resources/read', { uri: 'repo+repo://secret/keys' }), email: 'bob@example.com' }),
    );
    expect(refused.error?.message).toContain('repo+repo://secret/keys');
    expect(refused.error?.code).toBe(-32602);
    expect((await received(t, 0)).filter((r) => r.body.includes('"resources/read"'))).toHaveLength(1);
  });
});

describe('issue #21: resource links in tool results', () => {
  it('names a linked resource as the aggregate serves it, so the client can read it back', async () => {
    captureLogs();
    const { config, aggregate } = twoUpstreams();
    const answer = await answerOf(
      await callAggregate({ config, aggregate, init: modernRequest(1, 'tools/call', { name: 'extra_link_resource', arguments: {} }) }),
    );
    expect(answer.result?.content).toEqual([expect.objectContaining({ type: 'resource_link', uri: 'extra+notes://1' })]);
  });
});

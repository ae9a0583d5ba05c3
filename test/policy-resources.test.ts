import { beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config';
import { rewriteListAnswers } from '../src/policy';
import { CLIENT_HEADERS, callProxy, captureLogs, proxyConfig, proxyEnv, received, rpcPost, sseMessages, tag } from './fixtures/proxy';

/**
 * Issue #19: the policy beyond tools. `resources` (by URI pattern) and `prompts` (by name) over
 * their lists, reads and gets, and `completion/complete` by the ref it completes, as a client sees
 * them through the proxy, in front of the real test upstream's `/tools/` server (see CONTENT in
 * upstream-server.mjs).
 */

type Message = {
  jsonrpc: '2.0';
  id?: unknown;
  method?: string;
  result?: {
    resources?: Array<{ uri: string }>;
    resourceTemplates?: Array<{ uriTemplate: string }>;
    prompts?: Array<{ name: string }>;
    nextCursor?: string;
    ttlMs?: number;
    cacheScope?: string;
    contents?: unknown[];
    completion?: unknown;
  };
  error?: { code: number; message: string };
};

const rpc = (id: unknown, method: string, params: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id, method, params });
const RESOURCES = { allow: ['repo://*'], deny: ['*secret*'] };
const PROMPTS = { deny: ['admin_*'] };

function config(format: 'json' | 'sse', more: Record<string, unknown> = {}) {
  return proxyConfig(`/tools/${format}/mcp`, {
    UPSTREAM_RESOURCES: JSON.stringify(RESOURCES),
    UPSTREAM_PROMPTS: JSON.stringify(PROMPTS),
    ...more,
  });
}

const uris = (m: Message | undefined) => m?.result?.resources?.map((r) => r.uri);
const promptNames = (m: Message | undefined) => m?.result?.prompts?.map((p) => p.name);

beforeEach(() => {
  captureLogs();
});

describe('resource and prompt policy: lists', () => {
  it('hides resources outside allow or inside deny on every page, with the private cache hint', async () => {
    const first = await (await callProxy({ config: config('json'), path: '/mcp', init: rpcPost(rpc(1, 'resources/list')) })).json<Message>();
    expect(uris(first)).toEqual(['repo://docs/readme']);
    expect(first.result?.nextCursor).toBe('1');
    expect(first.result).toMatchObject({ cacheScope: 'private', ttlMs: 60000 });
    const second = await (await callProxy({ config: config('json'), path: '/mcp', init: rpcPost(rpc(2, 'resources/list', { cursor: '1' })) })).json<Message>();
    expect(second.id).toBe(2);
    expect(uris(second)).toEqual([]);
  });

  it('judges resource templates by their uriTemplate', async () => {
    const answer = await (await callProxy({ config: config('json'), path: '/mcp', init: rpcPost(rpc(1, 'resources/templates/list')) })).json<Message>();
    expect(answer.result?.resourceTemplates?.map((t) => t.uriTemplate)).toEqual(['repo://{owner}/{name}']);
  });

  it('hides denied prompts, keeping a shorter ttlMs of the upstream', async () => {
    const answer = await (await callProxy({ config: config('json'), path: '/mcp', init: rpcPost(rpc(1, 'prompts/list')) })).json<Message>();
    expect(promptNames(answer)).toEqual(['summarize', 'review_pr']);
    expect(answer.result).toMatchObject({ cacheScope: 'private', ttlMs: 5000 });
  });

  it('filters lists answered as SSE, and inside batches as JSON and SSE', async () => {
    const single = sseMessages<Message>(await (await callProxy({ config: config('sse'), path: '/mcp', init: rpcPost(rpc(7, 'prompts/list')) })).text());
    expect(promptNames(single[0])).toEqual(['summarize', 'review_pr']);

    const batch = [rpc('r', 'resources/list'), rpc('p', 'prompts/list'), rpc('t', 'resources/templates/list'), rpc('x', 'ping')];
    for (const format of ['json', 'sse'] as const) {
      const response = await callProxy({ config: config(format), path: '/mcp', init: rpcPost(batch) });
      const answers = format === 'json' ? await response.json<Message[]>() : sseMessages<Message>(await response.text());
      expect(answers.map((a) => a.id)).toEqual(['r', 'p', 't', 'x']);
      expect(uris(answers[0])).toEqual(['repo://docs/readme']);
      expect(promptNames(answers[1])).toEqual(['summarize', 'review_pr']);
      expect(answers[2]?.result?.resourceTemplates?.map((t) => t.uriTemplate)).toEqual(['repo://{owner}/{name}']);
      expect(answers[3]?.result).toEqual({});
    }
  });

  it('passes resource and prompt lists untouched under a tools-only policy', async () => {
    const tools = proxyConfig('/tools/json/mcp', { UPSTREAM_TOOLS: JSON.stringify({ deny: ['delete_*'] }) });
    const answer = await (await callProxy({ config: tools, path: '/mcp', init: rpcPost(rpc(1, 'prompts/list')) })).json<Message>();
    expect(promptNames(answer)).toEqual(['summarize', 'admin_reset', 'review_pr']);
    expect(answer.result?.cacheScope).toBeUndefined();
  });
});

describe('resource and prompt policy: reads, gets and completion', () => {
  it('answers a read of a denied resource itself, with -32602 and the id, and forwards nothing', async () => {
    const t = tag();
    for (const uri of ['repo://secret/keys', 'file:///etc/passwd', 'repo://docs/%73ecret']) {
      const response = await callProxy({ config: config('json'), path: `/mcp?t=${t}`, init: rpcPost(rpc(9, 'resources/read', { uri })) });
      expect(response.status).toBe(200);
      const body = await response.json<Message>();
      expect(body).toEqual({ jsonrpc: '2.0', id: 9, error: { code: -32602, message: expect.stringContaining('not available through this gateway') } });
    }
    const subscribe = await callProxy({
      config: config('json'),
      path: `/mcp?t=${t}`,
      init: rpcPost(rpc(10, 'resources/subscribe', { uri: 'repo://secret/keys' })),
    });
    expect((await subscribe.json<Message>()).error?.code).toBe(-32602);
    const nameless = await callProxy({ config: config('json'), path: `/mcp?t=${t}`, init: rpcPost(rpc(11, 'resources/read', {})) });
    expect((await nameless.json<Message>()).error?.code).toBe(-32602);
    expect(await received(t, 0)).toEqual([]);
  });

  it('forwards a read of an allowed resource and a get of an allowed prompt', async () => {
    const t = tag();
    const read = await (
      await callProxy({ config: config('json'), path: `/mcp?t=${t}`, init: rpcPost(rpc(1, 'resources/read', { uri: 'repo://docs/readme' })) })
    ).json<Message>();
    expect(read.result?.contents).toHaveLength(1);
    const get = await (
      await callProxy({ config: config('json'), path: `/mcp?t=${t}`, init: rpcPost(rpc(2, 'prompts/get', { name: 'summarize' })) })
    ).json<Message>();
    expect(get.error).toBeUndefined();
    expect((await received(t, 2)).map((r) => JSON.parse(r.body).method)).toEqual(['resources/read', 'prompts/get']);
  });

  it('refuses a get of a denied prompt, and in a batch answers only the refused requests, as JSON and as SSE', async () => {
    const t = tag();
    const denied = await (
      await callProxy({ config: config('json'), path: `/mcp?t=${t}`, init: rpcPost(rpc(3, 'prompts/get', { name: 'admin_reset' })) })
    ).json<Message>();
    expect(denied).toMatchObject({ id: 3, error: { code: -32602 } });
    expect(await received(t, 0)).toEqual([]);

    const batch = [
      rpc(1, 'prompts/get', { name: 'admin_reset' }),
      rpc(2, 'resources/read', { uri: 'repo://docs/readme' }),
      rpc(3, 'resources/read', { uri: 'repo://secret/keys' }),
    ];
    for (const format of ['json', 'sse'] as const) {
      const u = tag();
      const response = await callProxy({ config: config(format), path: `/mcp?t=${u}`, init: rpcPost(batch) });
      const answers = format === 'json' ? await response.json<Message[]>() : sseMessages<Message>(await response.text());
      expect(answers.find((a) => a.id === 1)?.error?.code).toBe(-32602);
      expect(answers.find((a) => a.id === 3)?.error?.code).toBe(-32602);
      expect(answers.find((a) => a.id === 2)?.result?.contents).toHaveLength(1);
      const [forwarded] = await received(u);
      expect((JSON.parse(forwarded?.body ?? '[]') as Array<{ id: unknown }>).map((m) => m.id)).toEqual([2]);
    }
  });

  it('lets completion/complete follow the prompt or resource it completes', async () => {
    const t = tag();
    const complete = (id: number, ref: unknown) => rpc(id, 'completion/complete', { ref, argument: { name: 'branch', value: 'ma' } });
    const ask = async (id: number, ref: unknown) =>
      (await callProxy({ config: config('json'), path: `/mcp?t=${t}`, init: rpcPost(complete(id, ref)) })).json<Message>();
    expect((await ask(1, { type: 'ref/prompt', name: 'admin_reset' })).error?.code).toBe(-32602);
    expect((await ask(2, { type: 'ref/resource', uri: 'repo://secret/{id}' })).error?.code).toBe(-32602);
    expect((await ask(3, { type: 'ref/other' })).error?.code).toBe(-32602);
    expect(await received(t, 0)).toEqual([]);
    expect((await ask(4, { type: 'ref/prompt', name: 'summarize' })).result?.completion).toBeDefined();
    expect((await ask(5, { type: 'ref/resource', uri: 'repo://{owner}/{name}' })).result?.completion).toBeDefined();
  });

  it('refuses a 2026-07-28 subscriptions/listen that subscribes to a denied resource, and forwards one that does not', async () => {
    const t = tag();
    const listen = (id: number, resourceSubscriptions: unknown) =>
      rpc(id, 'subscriptions/listen', { notifications: { toolsListChanged: true, resourceSubscriptions } });
    const refused = await callProxy({ config: config('json'), path: `/mcp?t=${t}`, init: rpcPost(listen(1, ['repo://docs/readme', 'repo://secret/keys'])) });
    expect(await refused.json<Message>()).toMatchObject({ id: 1, error: { code: -32602, message: expect.stringContaining('repo://secret/keys') } });
    expect(await received(t, 0)).toEqual([]);
    const allowed = await callProxy({ config: config('json'), path: `/mcp?t=${t}`, init: rpcPost(listen(2, ['repo://docs/readme'])) });
    expect((await allowed.json<Message>()).error).toBeUndefined();
    expect(await received(t)).toHaveLength(1);
  });

  it('writes resource_refused and prompt_refused to the log line', async () => {
    const logs = captureLogs();
    await callProxy({ config: config('json'), path: '/mcp', init: rpcPost(rpc(1, 'resources/read', { uri: 'repo://secret/keys' })) });
    await callProxy({ config: config('json'), path: '/mcp', init: rpcPost(rpc(2, 'prompts/get', { name: 'admin_reset' })) });
    const outcomes = logs
      .parsed()
      .filter((l) => l.event === 'mcp_proxy')
      .map((l) => l.outcome);
    expect(outcomes).toEqual(['resource_refused', 'prompt_refused']);
  });

  it('leaves the tools list replayed on a GET stream alone under a resources-only policy', async () => {
    const init = { method: 'GET', headers: { ...CLIENT_HEADERS, Accept: 'text/event-stream', 'Last-Event-ID': 'r0' } };
    const only = proxyConfig('/tools/sse/mcp', { UPSTREAM_RESOURCES: JSON.stringify(RESOURCES) });
    const messages = sseMessages<Message>(await (await callProxy({ config: only, path: '/mcp', init })).text());
    expect(messages).toHaveLength(3);
    expect((messages[1]?.result as { tools?: unknown[] } | undefined)?.tools).toHaveLength(6);
  });

  it('filters a resource or prompt list recognised by its shape, as on a GET stream not tied to a request', () => {
    const rules = config('sse').upstreams[0]?.tools?.fallback;
    if (!rules) throw new Error('no policy');
    const replayed = { jsonrpc: '2.0', id: 'earlier', result: { resources: [{ uri: 'repo://docs/readme' }, { uri: 'repo://secret/keys' }] } };
    expect(uris(rewriteListAnswers(rules, replayed, 'shape') as Message)).toEqual(['repo://docs/readme']);
    const prompts = { jsonrpc: '2.0', id: 'p', result: { prompts: [{ name: 'admin_reset' }, { name: 'summarize' }] } };
    expect(promptNames(rewriteListAnswers(rules, prompts, 'shape') as Message)).toEqual(['summarize']);
  });
});

describe('resource and prompt policy: per person', () => {
  it('keeps a flat toolsFor entry a tools rule, and lets a nested one replace resources or prompts for that person', async () => {
    const more = {
      UPSTREAM_TOOLS_FOR: JSON.stringify({
        '@maintainers.example': { deny: ['delete_*'] },
        'lead@maintainers.example': { resources: { deny: [] }, prompts: { allow: ['admin_*'] } },
      }),
    };
    const seen = async (email: string) => {
      const body = [rpc('r', 'resources/list'), rpc('p', 'prompts/list')];
      const [r, p] = await (await callProxy({ config: config('json', more), email, path: '/mcp', init: rpcPost(body) })).json<Message[]>();
      return { resources: uris(r), prompts: promptNames(p) };
    };
    // The flat entry changes tools only: resources and prompts stay the upstream's.
    expect(await seen('carol@maintainers.example')).toEqual({ resources: ['repo://docs/readme'], prompts: ['summarize', 'review_pr'] });
    expect(await seen('lead@maintainers.example')).toEqual({
      resources: ['repo://docs/readme', 'repo://secret/keys', 'file:///etc/passwd'],
      prompts: ['admin_reset'],
    });
    const t = tag();
    const get = await callProxy({
      config: config('json', more),
      email: 'lead@maintainers.example',
      path: `/mcp?t=${t}`,
      init: rpcPost(rpc(1, 'prompts/get', { name: 'admin_reset' })),
    });
    expect((await get.json<Message>()).error).toBeUndefined();
  });
});

describe('resource and prompt policy: configuration', () => {
  const problems = (overrides: Record<string, unknown>) => {
    try {
      proxyConfig('/json/mcp', overrides);
    } catch (error) {
      if (error instanceof ConfigError) return error.problems.map((p) => p.variable);
      throw error;
    }
    return [];
  };

  it('names the field of a malformed resources or prompts policy', () => {
    expect(problems({ UPSTREAM_RESOURCES: '{"deny":"*secret*"}' })).toEqual(['UPSTREAM_RESOURCES.deny']);
    expect(problems({ UPSTREAM_PROMPTS: '{"readOnly":true}' })).toEqual(['UPSTREAM_PROMPTS.readOnly']);
    expect(problems({ UPSTREAM_PROMPTS: 'nope' })).toEqual(['UPSTREAM_PROMPTS']);
    expect(problems({ UPSTREAM_TOOLS_FOR: '{"@example.com":{"resources":{"allow":[1]}}}' })).toEqual(['UPSTREAM_TOOLS_FOR.@example.com.resources.allow']);
    expect(problems({ UPSTREAM_TOOLS_FOR: '{"@example.com":{"tools":{},"deny":["x"]}}' })).toEqual(['UPSTREAM_TOOLS_FOR.@example.com']);
    const upstreams = JSON.stringify({ github: { url: 'https://api.githubcopilot.com/mcp/', token: 'GH', prompts: { hide: [] } } });
    expect(problems({ UPSTREAMS: upstreams, GH: 'x' })).toEqual(['UPSTREAMS.github.prompts.hide']);
  });

  it('accepts resources and prompts beside tools in an UPSTREAMS entry', () => {
    const loaded = loadConfig({
      ...proxyEnv('/json/mcp'),
      UPSTREAMS: JSON.stringify({
        github: {
          url: 'https://api.githubcopilot.com/mcp/',
          token: 'GITHUB_TOKEN',
          tools: { readOnly: true },
          resources: { allow: ['repo://*'], deny: ['*secret*'] },
          prompts: { deny: ['admin_*'] },
          toolsFor: {
            '@maintainers.example': { tools: { deny: ['delete_*'] }, prompts: {} },
            'lead@maintainers.example': { resources: {} },
          },
        },
      }),
      GITHUB_TOKEN: 'ghp_x',
    });
    const github = loaded.upstreams.find((u) => u.name === 'github');
    expect(github?.tools?.fallback?.resources?.deny).toHaveLength(1);
    const maintainers = github?.tools?.domains.get('maintainers.example');
    expect(maintainers?.deny).toHaveLength(1);
    expect(maintainers?.resources?.allow).toHaveLength(1);
    expect(maintainers?.prompts?.deny).toEqual([]);
    // A nested entry keeps the upstream's rules for the kinds it leaves out, tools included.
    const lead = github?.tools?.emails.get('lead@maintainers.example');
    expect(lead).toMatchObject({ readOnly: true, resources: { allow: undefined, deny: [] }, prompts: { deny: [expect.any(RegExp)] } });
  });
});

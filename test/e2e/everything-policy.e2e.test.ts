/**
 * Issue #9: the tool policy in front of the MCP reference server "everything", as the SDK client
 * sees it. Everyone is read-only (`UPSTREAM_TOOLS`); bob has a deny pattern instead
 * (`UPSTREAM_TOOLS_FOR`). The unfiltered list comes from the server itself, so the expectations
 * follow whatever annotations the installed version carries. Issue #19: blob resources and the
 * completable prompt are denied to everyone (`UPSTREAM_RESOURCES`, `UPSTREAM_PROMPTS`).
 */
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError, type Prompt, type Resource, type ResourceTemplate, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Everything, startEverything } from './support/everything';
import { type Connected, connectWithOAuth } from './support/mcp-client';
import { type E2EStack, gatewayLogs, need, startE2EStack } from './support/stack';

const upstreamToken = `everything-pat-${randomBytes(16).toString('hex')}`;

let everything: Everything | undefined;
let stack: E2EStack | undefined;
let alice: Connected | undefined;
let bob: Connected | undefined;
/** Every tool the server lists, asked directly (it checks no credentials). */
let all: Tool[] = [];
/** And every resource, template and prompt it lists. */
let resources: Resource[] = [];
let templates: ResourceTemplate[] = [];
let prompts: Prompt[] = [];

beforeAll(async () => {
  everything = await startEverything('streamableHttp');
  const direct = new Client({ name: 'e2e-direct', version: '1.0.0' });
  await direct.connect(new StreamableHTTPClientTransport(new URL(everything.url)));
  all = (await direct.listTools()).tools;
  resources = (await direct.listResources()).resources;
  templates = (await direct.listResourceTemplates()).resourceTemplates;
  prompts = (await direct.listPrompts()).prompts;
  await direct.close();

  stack = await startE2EStack({
    upstreamUrl: everything.url,
    upstreamToken,
    gatewayVars: {
      UPSTREAM_TOOLS: JSON.stringify({ readOnly: true }),
      UPSTREAM_TOOLS_FOR: JSON.stringify({ 'bob@example.com': { deny: ['get-*', 'trigger-*'] } }),
      UPSTREAM_RESOURCES: JSON.stringify({ deny: ['*/blob/*'] }),
      UPSTREAM_PROMPTS: JSON.stringify({ deny: ['completable-*'] }),
      // The same server again, at /limited/mcp, with a small rate limit and no tool policy.
      UPSTREAMS: JSON.stringify({ limited: { url: everything.url, token: 'LIMITED_TOKEN', rateLimit: { requests: 6, period: 60 } } }),
      LIMITED_TOKEN: upstreamToken,
    },
  });
  alice = await connectWithOAuth(stack.urls.mcp, { email: 'alice@example.com' });
  bob = await connectWithOAuth(stack.urls.mcp, { email: 'bob@example.com' });
});

afterAll(async () => {
  await Promise.allSettled([alice?.client.close(), bob?.client.close()]);
  await Promise.allSettled([stack?.stop(), everything?.stop()]);
  if (process.env.E2E_VERBOSE) console.error([...(stack?.logs ?? []), ...(everything?.logs ?? []).map((l) => `everything: ${l}`)].join('\n'));
});

describe('tool policy in front of server-everything', () => {
  it('under readOnly, lists only the tools the server annotates read-only, and refuses a call to another', async () => {
    const { client } = need(alice);
    const readOnly = all.filter((t) => t.annotations?.readOnlyHint === true).map((t) => t.name);
    const other = all.find((t) => t.annotations?.readOnlyHint !== true)?.name;
    expect(readOnly.length, 'the server annotates some tools read-only').toBeGreaterThan(0);
    expect(other, 'and some not').toBeTruthy();

    const listed = (await client.listTools()).tools.map((t) => t.name);
    expect(listed.sort()).toEqual([...readOnly].sort());

    const refusal = await client.callTool({ name: other as string, arguments: {} }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(McpError);
    expect((refusal as McpError).code).toBe(ErrorCode.InvalidParams);
    expect((refusal as McpError).message).toContain(`tool ${other} is not available through this gateway`);
    // The line is printed just after the response (issue #10), then travels through wrangler.
    await vi.waitFor(() => {
      const logged = gatewayLogs(need(stack)).filter((l) => l.includes('"outcome":"tool_refused"'));
      expect(logged.some((l) => l.includes(`"tool":"${other}"`))).toBe(true);
    });
  });

  it('streams the progress of an allowed long-running tool before its result', async () => {
    const { client } = need(alice);
    const started = performance.now();
    const progress: number[] = [];
    const result = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 2 } }, undefined, {
      onprogress: () => void progress.push(performance.now() - started),
    });
    const resultAt = performance.now() - started;
    expect(JSON.stringify(result.content)).toContain('Long running operation completed');
    expect(progress).toHaveLength(2);
    // One step a second upstream: a proxy that buffered would hand the first over with the result.
    expect(resultAt - (progress[0] as number)).toBeGreaterThan(700);
  });

  it('hides the tools a deny pattern matches, for the person it applies to', async () => {
    const { client } = need(bob);
    const listed = (await client.listTools()).tools.map((t) => t.name);
    const expected = all.map((t) => t.name).filter((name) => !/^(get|trigger)-/.test(name));
    expect(expected.length).toBeGreaterThan(0);
    expect(listed.sort()).toEqual(expected.sort());
    await expect(client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })).rejects.toThrow(/not available through this gateway/);
    // Not read-only for bob: echo is his whatever its annotations.
    expect(JSON.stringify((await client.callTool({ name: 'echo', arguments: { message: 'hi' } })).content)).toContain('hi');
  });
});

describe('issue #19: resource and prompt policy in front of server-everything', () => {
  const refusalOf = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (error: unknown) => error,
    );

  it('hides blob resources and templates and refuses to read one; text ones pass', async () => {
    const { client } = need(alice);
    const textTemplate = templates.find((t) => t.uriTemplate.includes('/text/'));
    const blobTemplate = templates.find((t) => t.uriTemplate.includes('/blob/'));
    expect(textTemplate && blobTemplate, 'the server offers text and blob templates').toBeTruthy();

    const listed = (await client.listResources()).resources.map((r) => r.uri);
    expect(listed.sort()).toEqual(
      resources
        .map((r) => r.uri)
        .filter((uri) => !uri.includes('/blob/'))
        .sort(),
    );
    const listedTemplates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
    expect(listedTemplates).toContain(textTemplate?.uriTemplate);
    expect(listedTemplates).not.toContain(blobTemplate?.uriTemplate);

    const blob = (blobTemplate as ResourceTemplate).uriTemplate.replace('{resourceId}', '1');
    const refusal = await refusalOf(client.readResource({ uri: blob }));
    expect(refusal).toBeInstanceOf(McpError);
    expect((refusal as McpError).code).toBe(ErrorCode.InvalidParams);
    expect((refusal as McpError).message).toContain('not available through this gateway');
    const text = await client.readResource({ uri: (textTemplate as ResourceTemplate).uriTemplate.replace('{resourceId}', '1') });
    expect(text.contents.length).toBeGreaterThan(0);
    await vi.waitFor(() => expect(gatewayLogs(need(stack)).some((l) => l.includes('"outcome":"resource_refused"'))).toBe(true));
  });

  it('hides the denied prompt, refuses to get or complete it, and completes an allowed one', async () => {
    const { client } = need(bob);
    expect(
      prompts.some((p) => p.name === 'completable-prompt'),
      'the server offers completable-prompt',
    ).toBe(true);
    const listed = (await client.listPrompts()).prompts.map((p) => p.name);
    expect(listed.sort()).toEqual(
      prompts
        .map((p) => p.name)
        .filter((name) => name !== 'completable-prompt')
        .sort(),
    );
    const get = await refusalOf(client.getPrompt({ name: 'completable-prompt', arguments: { department: 'Sales', name: 'Eve' } }));
    expect((get as McpError).code).toBe(ErrorCode.InvalidParams);
    const ref = { type: 'ref/prompt' as const, name: 'completable-prompt' };
    const complete = await refusalOf(client.complete({ ref, argument: { name: 'department', value: 'S' } }));
    expect((complete as McpError).code).toBe(ErrorCode.InvalidParams);

    const textTemplate = templates.find((t) => t.uriTemplate.includes('/text/')) as ResourceTemplate;
    const allowed = await client.complete({ ref: { type: 'ref/resource', uri: textTemplate.uriTemplate }, argument: { name: 'resourceId', value: '1' } });
    expect(allowed.completion.values).toBeDefined();
  });
});

describe('rate limit under wrangler dev', () => {
  it('answers 429 with Retry-After once a person is over the limit, and leaves their other upstream alone', async () => {
    const limitedUrl = `${need(stack).urls.gateway}/limited/mcp`;
    const limited = await connectWithOAuth(limitedUrl, { email: 'alice@example.com' });
    try {
      const token = limited.provider.savedTokens?.access_token as string;
      const headers = {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        'Mcp-Session-Id': limited.transport.sessionId as string,
        'MCP-Protocol-Version': '2025-11-25',
      };
      const statuses: number[] = [];
      let refused: Response | undefined;
      for (let id = 1; id <= 8 && !refused; id++) {
        const response = await fetch(limitedUrl, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' }) });
        statuses.push(response.status);
        if (response.status === 429) refused = response;
        else await response.body?.cancel();
      }
      expect(
        statuses.slice(0, -1).every((s) => s === 200 || s === 202),
        `statuses ${statuses}`,
      ).toBe(true);
      expect(refused?.status).toBe(429);
      expect(Number(refused?.headers.get('Retry-After'))).toBeGreaterThan(0);
      expect(((await need(refused).json()) as { error: { code: number } }).error.code).toBe(-32006);
      // The same person on /mcp, which has no rateLimit, is unaffected.
      expect((await need(alice).client.listTools()).tools.length).toBeGreaterThan(0);
    } finally {
      await limited.client.close().catch(() => {});
    }
  });
});

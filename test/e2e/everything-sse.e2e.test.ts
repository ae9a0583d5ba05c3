/**
 * The gateway fronting the MCP reference server "everything" in its older HTTP+SSE mode
 * (2024-11-05: `GET /sse` announces `POST /message?sessionId=…` in an `endpoint` event), reached
 * with the SDK's SSEClientTransport and OAuth. The client must only ever be sent to the gateway.
 */
import { randomBytes } from 'node:crypto';
import type { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Everything, startEverything } from './support/everything';
import { type Connected, connectSseWithOAuth } from './support/mcp-client';
import { type E2EStack, need, startE2EStack } from './support/stack';
import { readAll } from './support/streams';

const upstreamToken = `everything-sse-pat-${randomBytes(16).toString('hex')}`;

/** Every request the client made, and the text of each event stream it opened. */
const requests: { method: string; url: URL; status: number }[] = [];
const eventStreams: { url: URL; text: string }[] = [];

let everything: Everything | undefined;
let stack: E2EStack | undefined;
let connected: Connected<SSEClientTransport> | undefined;

beforeAll(async () => {
  everything = await startEverything('sse');
  stack = await startE2EStack({ upstreamUrl: everything.url, upstreamToken });
  connected = await connectSseWithOAuth(stack.urls.mcp, {
    wrapFetch: (inner) => async (url, init) => {
      const response = await inner(url, init);
      requests.push({ method: init?.method ?? 'GET', url: new URL(url), status: response.status });
      if (response.ok && /^text\/event-stream/.test(response.headers.get('content-type') ?? '')) {
        const entry = { url: new URL(url), text: '' };
        eventStreams.push(entry);
        void readAll(response.clone(), (text) => (entry.text += text));
      }
      return response;
    },
  });
});

afterAll(async () => {
  await connected?.client.close().catch(() => {});
  await Promise.allSettled([stack?.stop(), everything?.stop()]);
  if (process.env.E2E_VERBOSE) console.error([...(stack?.logs ?? []), ...(everything?.logs ?? []).map((l) => `everything: ${l}`)].join('\n'));
});

describe('gateway in front of server-everything (HTTP+SSE)', () => {
  it('lists and calls tools over the SSE transport through the gateway', async () => {
    const { client } = need(connected);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'get-sum']));

    const echoed = await client.callTool({ name: 'echo', arguments: { message: 'hello through the gateway' } });
    expect(echoed.isError).toBeFalsy();
    expect(echoed.content).toEqual([{ type: 'text', text: 'Echo: hello through the gateway' }]);

    const sum = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
    expect(JSON.stringify(sum.content)).toContain('5');
  });

  it('announces a message endpoint on the gateway origin that never names the upstream', async () => {
    const gateway = new URL(need(stack).urls.gateway);
    const { port } = need(everything);

    const stream = eventStreams.find((s) => s.url.pathname === '/mcp');
    expect(stream, 'the client opened its event stream at the gateway').toBeDefined();
    const match = /(?:^|\n)event: ?endpoint\r?\ndata: ?([^\r\n]*)/.exec(stream?.text ?? '');
    expect(match, `an endpoint event in: ${stream?.text.slice(0, 500)}`).not.toBeNull();
    const announced = (match as RegExpExecArray)[1] as string;
    const endpoint = new URL(announced, need(stack).urls.mcp);

    expect(endpoint.origin).toBe(gateway.origin);
    expect(endpoint.pathname).toMatch(/^\/mcp\/\.endpoint\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(endpoint.searchParams.get('sessionId'), 'the upstream session id is kept').toBeTruthy();
    // Neither the upstream's host and port nor its own message path show through.
    for (const text of [announced, stream?.text ?? '']) {
      expect(text).not.toContain(`127.0.0.1:${port}`);
      expect(text).not.toContain(`localhost:${port}`);
      expect(text).not.toContain('/message');
    }

    // Every request the client made went to the gateway, and its messages to that endpoint.
    expect(requests.filter((r) => r.url.origin !== gateway.origin)).toEqual([]);
    const posts = requests.filter((r) => r.method === 'POST' && r.url.pathname === endpoint.pathname);
    expect(posts.length).toBeGreaterThanOrEqual(3);
    expect(posts.every((r) => r.status === 202)).toBe(true);
  });

  it('refuses a message endpoint the upstream did not announce', async () => {
    const { provider, recorder } = need(connected);
    const stream = eventStreams.find((s) => s.url.pathname === '/mcp');
    const announced = /event: ?endpoint\r?\ndata: ?([^\r\n]*)/.exec(stream?.text ?? '')?.[1] ?? '';
    const endpoint = new URL(announced, need(stack).urls.mcp);
    const [, signature] = endpoint.pathname.split('/').at(-1)?.split('.') ?? [];
    // The real signature over another upstream path.
    const forged = new URL(`/mcp/.endpoint/${Buffer.from('/sse').toString('base64url')}.${signature}${endpoint.search}`, endpoint);
    const response = await recorder.fetch(forged, {
      method: 'POST',
      headers: { Authorization: `Bearer ${provider.savedTokens?.access_token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/list' }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32600 } });
  });

  it('never lets the upstream token reach the client', async () => {
    const { recorder } = need(connected);
    await recorder.expectNever(upstreamToken);
    // The check saw the event stream and the tool results.
    expect(await recorder.everything()).toContain('Echo: hello through the gateway');
  });
});



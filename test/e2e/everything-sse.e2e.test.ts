/**
 * The gateway fronting the MCP reference server "everything" in its older HTTP+SSE mode
 * (2024-11-05: `GET /sse` announces `POST /message?sessionId=…` in an `endpoint` event), reached
 * with the SDK's SSEClientTransport and OAuth. The client must only ever be sent to the gateway.
 */
import { randomBytes } from 'node:crypto';
import type { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Everything, startEverything } from './support/everything';
import { type Connected, connectSseWithOAuth } from './support/mcp-client';
import { type E2EStack, need, startE2EStack } from './support/stack';
import { readAll } from './support/streams';

const upstreamToken = `everything-sse-pat-${randomBytes(16).toString('hex')}`;

let everything: Everything | undefined;
let stack: E2EStack | undefined;

beforeAll(async () => {
  everything = await startEverything('sse');
  stack = await startE2EStack({ upstreamUrl: everything.url, upstreamToken });
});

afterAll(async () => {
  await Promise.allSettled([stack?.stop(), everything?.stop()]);
  if (process.env.E2E_VERBOSE) console.error([...(stack?.logs ?? []), ...(everything?.logs ?? []).map((l) => `everything: ${l}`)].join('\n'));
});

/**
 * A client of this test's own over the SSE transport, with every request it made and the text of
 * each event stream it opened. `leave()` closes it and checks that nothing it or the person
 * received holds the upstream token, reading every stream to its end or to the client's close.
 */
async function connect() {
  const requests: { method: string; url: URL; status: number }[] = [];
  const eventStreams: { url: URL; text: string; done: Promise<void>; error?: unknown }[] = [];
  let opened!: () => void;
  const announced = new Promise<void>((resolve) => (opened = resolve));
  // Every request the client started: the answer to a POST can arrive on the event stream before
  // the POST's own 202 does, so a test that counts requests first waits for them all.
  const inFlight: Promise<unknown>[] = [];
  const connected: Connected<SSEClientTransport> = await connectSseWithOAuth(need(stack).urls.mcp, {
    wrapFetch: (inner) => (url, init) => {
      const handled = forward(inner, url, init);
      inFlight.push(handled.catch(() => {}));
      return handled;
    },
  });
  async function forward(inner: FetchLike, url: string | URL, init?: RequestInit): Promise<Response> {
    const response = await inner(url, init);
    requests.push({ method: init?.method ?? 'GET', url: new URL(url), status: response.status });
    if (response.ok && /^text\/event-stream/.test(response.headers.get('content-type') ?? '')) {
      const entry: (typeof eventStreams)[number] = { url: new URL(url), text: '', done: Promise.resolve() };
      entry.done = readAll(
        response.clone(),
        (text) => {
          entry.text += text;
          if (/event: ?endpoint\r?\ndata: ?[^\r\n]*\r?\n/.test(entry.text)) opened();
        },
        init?.signal,
      ).then(
        () => {},
        (error: unknown) => void (entry.error = error),
      );
      eventStreams.push(entry);
    }
    return response;
  }
  const settled = () => Promise.all(inFlight);
  // The client connected, so it read the endpoint event; so has this copy by now, or soon.
  await announced;
  const leave = async () => {
    await connected.client.close();
    const seen = await connected.recorder.everything();
    expect(seen.includes(upstreamToken), 'the upstream token reached the client').toBe(false);
    await Promise.all(eventStreams.map((stream) => stream.done));
    expect(eventStreams.filter((stream) => stream.error !== undefined).map((stream) => String(stream.error))).toEqual([]);
    return seen;
  };
  return { ...connected, requests, settled, eventStreams, leave };
}

/** The message endpoint the gateway announced on the client's event stream. */
function announcedEndpoint(eventStreams: { url: URL; text: string }[]) {
  const stream = eventStreams.find((s) => s.url.pathname === '/mcp');
  expect(stream, 'the client opened its event stream at the gateway').toBeDefined();
  const match = /(?:^|\n)event: ?endpoint\r?\ndata: ?([^\r\n]*)/.exec(stream?.text ?? '');
  expect(match, `an endpoint event in: ${stream?.text.slice(0, 500)}`).not.toBeNull();
  const announced = (match as RegExpExecArray)[1] as string;
  return { stream: stream as { text: string }, announced, endpoint: new URL(announced, need(stack).urls.mcp) };
}

describe('gateway in front of server-everything (HTTP+SSE)', () => {
  it('lists and calls tools over the SSE transport through the gateway', async () => {
    const { client, leave } = await connect();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'get-sum']));

    const echoed = await client.callTool({ name: 'echo', arguments: { message: 'hello through the gateway' } });
    expect(echoed.isError).toBeFalsy();
    expect(echoed.content).toEqual([{ type: 'text', text: 'Echo: hello through the gateway' }]);

    const sum = await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } });
    expect(JSON.stringify(sum.content)).toContain('5');
    await leave();
  });

  it('announces a message endpoint on the gateway origin that never names the upstream', async () => {
    const { client, requests, settled, eventStreams, leave } = await connect();
    const gateway = new URL(need(stack).urls.gateway);
    const { port } = need(everything);
    await client.listTools();
    await settled();

    const { stream, announced, endpoint } = announcedEndpoint(eventStreams);
    expect(endpoint.origin).toBe(gateway.origin);
    // Sealed (src/lib/seal.ts): `v1.<12-byte iv>.<AES-GCM of the path and query, with its 16-byte tag>`.
    expect(endpoint.pathname).toMatch(/^\/mcp\/\.endpoint\/v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{23,}$/);
    // The upstream's session id is sealed in the URL for this person (issue #16).
    expect(endpoint.search, 'the upstream session id is not shown').toBe('');
    // Neither the upstream's host and port nor its own message path show through.
    for (const text of [announced, stream.text]) {
      expect(text).not.toContain(`127.0.0.1:${port}`);
      expect(text).not.toContain(`localhost:${port}`);
      expect(text).not.toContain('/message');
    }

    // Every request the client made went to the gateway, and its messages to that endpoint:
    // initialize, notifications/initialized and tools/list.
    expect(requests.filter((r) => r.url.origin !== gateway.origin)).toEqual([]);
    const posts = requests.filter((r) => r.method === 'POST' && r.url.pathname === endpoint.pathname);
    expect(posts.length).toBeGreaterThanOrEqual(3);
    expect(posts.every((r) => r.status === 202)).toBe(true);
    await leave();
  });

  it('refuses a message endpoint the upstream did not announce', async () => {
    const { provider, recorder, eventStreams, leave } = await connect();
    const { endpoint } = announcedEndpoint(eventStreams);
    const [version, iv, ciphertext] = (endpoint.pathname.split('/').at(-1) ?? '').split('.');
    const sealed = Buffer.from(ciphertext ?? '', 'base64url');
    // The announced URL with its sealed path and query altered (AES-GCM: it no longer opens).
    sealed[sealed.length - 1] = (sealed.at(-1) ?? 0) ^ 1;
    const forged = new URL(`/mcp/.endpoint/${version}.${iv}.${sealed.toString('base64url')}`, endpoint);
    const response = await recorder.fetch(forged, {
      method: 'POST',
      headers: { Authorization: `Bearer ${provider.savedTokens?.access_token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/list' }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32600 } });
    await leave();
  });

  it('never lets the upstream token reach the client, on the event stream or the message answers', async () => {
    const { client, leave } = await connect();
    await client.callTool({ name: 'echo', arguments: { message: 'hello through the gateway' } });
    const seen = await leave();
    // The check saw the event stream and the tool results.
    expect(seen).toContain('Echo: hello through the gateway');
    expect(seen).toContain('event: endpoint');
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { rewriteEndpointEvents, rewriteJsonRpcEvents } from '../src/lib';
import {
  CLIENT_HEADERS,
  callProxy,
  captureLogs,
  expectJsonRpcError,
  headerNames,
  PAT,
  proxyConfig,
  readUntil,
  received,
  rpcPost,
  tag,
  upstreamHost,
} from './fixtures/proxy';

/** A sealed endpoint (src/lib/seal.ts): `v1.<12-byte iv>.<AES-GCM of the path and query, with its 16-byte tag>`. */
const SEALED_ENDPOINT = /^\/mcp\/\.endpoint\/v1\.[\w-]{16}\.[\w-]{23,}$/;
const SSE_GET: RequestInit = { method: 'GET', headers: { ...CLIENT_HEADERS, Accept: 'text/event-stream' } };
const ping = { jsonrpc: '2.0', id: 11, method: 'ping' };

let logs: ReturnType<typeof captureLogs>;
beforeEach(() => {
  logs = captureLogs();
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Opens the legacy stream and returns the endpoint the client was told, and the open reader. */
async function openLegacyStream(t: string, announce: string, base = '/legacy/sse') {
  const config = proxyConfig(base);
  const response = await callProxy({ config, path: `/mcp?t=${t}&announce=${announce}`, init: SSE_GET });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  const seen = await readUntil(reader, '\r\n\r\n');
  const endpoint = /event: endpoint\r\ndata: (.*)\r\n\r\n/.exec(seen)?.[1];
  return { config, reader, seen, endpoint: endpoint ?? '' };
}

describe('proxy: legacy HTTP+SSE transport', () => {
  it.each(['relative', 'absolute'])(
    'announces a signed gateway URL for a message endpoint outside UPSTREAM_URL (%s), and nothing that names the upstream',
    async (announce) => {
      const t = tag();
      const { seen, endpoint } = await openLegacyStream(t, announce);
      expect(endpoint).toMatch(SEALED_ENDPOINT);
      // The upstream's session id is sealed in too (issue #16).
      expect(endpoint).not.toContain(t);
      expect(seen).toContain(': stream open\n\n');
      expect(seen).not.toContain(upstreamHost());
      expect(seen).not.toContain('/legacy/message');
    },
  );

  it('delivers a POST to the announced endpoint to the upstream with the credential swapped', async () => {
    const t = tag();
    const { config, reader, endpoint } = await openLegacyStream(t, 'relative');
    const response = await callProxy({ config, path: endpoint, init: rpcPost(ping) });
    expect(response.status).toBe(202);

    const [, post] = await received(t, 2);
    expect(post).toMatchObject({ method: 'POST', path: '/legacy/message', query: `?sessionId=${t}` });
    expect(post?.headers.authorization).toBe(`Bearer ${PAT}`);
    expect(headerNames(post!)).not.toContain('cookie');
    expect(JSON.parse(post?.body ?? '')).toEqual(ping);
    // The answer comes back on the stream, as the transport requires.
    expect(await readUntil(reader, '"via":"legacy"')).toContain('"id":11');
    await reader.cancel();
  });

  it('announces a sealed gateway URL for an endpoint under UPSTREAM_URL too, which leads there', async () => {
    const t = tag();
    const { config, reader, endpoint } = await openLegacyStream(t, 'under');
    expect(endpoint).toMatch(SEALED_ENDPOINT);
    expect(endpoint).not.toContain(t);
    expect((await callProxy({ config, path: endpoint, init: rpcPost(ping) })).status).toBe(202);
    expect((await received(t, 2))[1]).toMatchObject({ path: '/legacy/sse/message', headers: { authorization: `Bearer ${PAT}` } });
    await reader.cancel();
  });

  it('ends the stream rather than announce an endpoint on another host', async () => {
    const t = tag();
    const response = await callProxy({ config: proxyConfig('/legacy/sse'), path: `/mcp?t=${t}&announce=foreign`, init: SSE_GET });
    let seen = '';
    const decoder = new TextDecoder();
    await expect(
      (async () => {
        for await (const chunk of response.body!) seen += decoder.decode(chunk, { stream: true });
      })(),
    ).rejects.toThrow();
    expect(seen).not.toContain('upstream-elsewhere');
    expect(seen).not.toContain('endpoint');
    expect(logs.parsed().map((line) => line.event)).toContain('mcp_proxy_endpoint_refused');
  });

  it('answers 400 to a forged, altered or unsigned endpoint URL, and sends nothing upstream', async () => {
    const t = tag();
    const { endpoint, reader } = await openLegacyStream(t, 'relative');
    await reader.cancel();
    const [, token = ''] = /\/\.endpoint\/([^?]+)/.exec(endpoint) ?? [];
    const flipped = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
    const [version, iv = '', sealed = ''] = token.split('.');
    const otherIv = `${version}.${iv.slice(0, -2)}${iv.endsWith('AA') ? 'BB' : 'AA'}.${sealed}`;
    const admin = btoa('/admin').replace(/=+$/, '');
    // The signed form before issue #16: the path in base64url, a dot, the signature.
    const oldForm = `${btoa('/legacy/message').replace(/=+$/, '')}.${token.slice(0, 43)}`;
    // The sealed form before issue #17: base64url(iv | ciphertext), with no version.
    const unversioned = `${iv}${sealed}`;
    for (const bad of [flipped, otherIv, token.slice(0, -1), `${token}A`, admin, oldForm, unversioned, `v2.${iv}.${sealed}`, `${token}.x`]) {
      const response = await callProxy({ config: proxyConfig('/legacy/sse'), path: `/mcp/.endpoint/${bad}`, init: rpcPost(ping) });
      await expectJsonRpcError(response, 400, -32600);
    }
    // A query the gateway did not announce is refused too, not passed on.
    await expectJsonRpcError(await callProxy({ config: proxyConfig('/legacy/sse'), path: `${endpoint}?sessionId=${tag()}`, init: rpcPost(ping) }), 400, -32600);
    // A URL sealed under another COOKIE_ENCRYPTION_KEY is worthless here.
    const otherKey = proxyConfig('/legacy/sse', { COOKIE_ENCRYPTION_KEY: 'another-secret-0123456789abcdef012345678' });
    await expectJsonRpcError(await callProxy({ config: otherKey, path: endpoint, init: rpcPost(ping) }), 400, -32600);
    // Only the stream's own GET reached the upstream.
    expect(await received(t, 0)).toHaveLength(1);
  });
});

describe('issue #16: legacy message endpoints are bound to the person', () => {
  it.each(['relative', 'under'])('refuses the endpoint announced to one person (%s) when another presents it, and sends nothing upstream', async (announce) => {
    const t = tag();
    const { config, reader, endpoint } = await openLegacyStream(t, announce);
    const response = await callProxy({ config, path: endpoint, init: rpcPost(ping), email: 'bob@example.com' });
    await expectJsonRpcError(response, 400, -32600);
    // Nor can the other person reach the session by its id: the announced URL never shows it.
    expect(endpoint).not.toContain(t);
    expect(await received(t, 0)).toHaveLength(1);
    // The person it was announced to still reaches it.
    expect((await callProxy({ config, path: endpoint, init: rpcPost(ping) })).status).toBe(202);
    await reader.cancel();
  });
});

describe('proxy: endpoint rewriting on a streamed body', () => {
  const original = ': hi\n\nevent: endpoint\r\nid: 5\r\ndata: /message?sessionId=abc\r\n\r\nevent: message\ndata: {"a":1}\n\n';
  const expected = ': hi\n\nevent: endpoint\r\nid: 5\r\ndata: /mcp/x?sessionId=abc\r\n\r\nevent: message\ndata: {"a":1}\n\n';

  it('rewrites only the endpoint event, however the bytes are split', async () => {
    const bytes = new TextEncoder().encode(original);
    for (let cut = 1; cut < bytes.length; cut++) {
      const chunks = [bytes.slice(0, cut), bytes.slice(cut)];
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          for (const chunk of chunks) controller.enqueue(chunk);
          controller.close();
        },
      });
      const rewritten = rewriteEndpointEvents(body, async (data) => data.replace('/message', '/mcp/x'));
      expect(await new Response(rewritten).text()).toBe(expected);
    }
  });

  it('passes every other event on as soon as it is complete', async () => {
    let push: ReadableStreamDefaultController<Uint8Array> | undefined;
    const body = new ReadableStream<Uint8Array>({ start: (controller) => void (push = controller) });
    const reader = rewriteEndpointEvents(body, async () => '/x').getReader();
    push?.enqueue(new TextEncoder().encode('event: message\ndata: 1\n\n'));
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('event: message\ndata: 1\n\n');
    push?.enqueue(new TextEncoder().encode('data: 2\n\n'));
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('data: 2\n\n');
    await reader.cancel();
  });

  it('streams a line too long to hold in pieces, and still rewrites a later endpoint event', async () => {
    // A legacy stream (its first event is the endpoint), so it is watched to the end (issue #12).
    const long = `data: ${'x'.repeat(200_000)}\r\n\r\n`;
    const bytes = new TextEncoder().encode(`event: endpoint\ndata: /message\n\n${long}event: endpoint\ndata: /message\n\n`);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0; at < bytes.length; at += 1000) controller.enqueue(bytes.slice(at, at + 1000));
        controller.close();
      },
    });
    const reader = rewriteEndpointEvents(body, async () => '/mcp/x').getReader();
    let text = '';
    let largest = 0;
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      largest = Math.max(largest, r.value.byteLength);
      text += new TextDecoder().decode(r.value);
    }
    // Output leaves before the long line ends: it is not held whole.
    expect(largest).toBeLessThan(200_000);
    expect(text).toBe(`event: endpoint\ndata: /mcp/x\n\n${long}event: endpoint\ndata: /mcp/x\n\n`);
  });

  it('streams an event too large to hold, and ends the stream if it turns out to be an endpoint', async () => {
    const large = `data: ${'x'.repeat(100_000)}\n\n`;
    const passed = new Response(new Blob([large]).stream()).body!;
    expect(await new Response(rewriteEndpointEvents(passed, async () => '/x')).text()).toBe(large);
    const hidden = new Response(new Blob([`data: ${'x'.repeat(100_000)}\nevent: endpoint\n\n`]).stream()).body!;
    await expect(new Response(rewriteEndpointEvents(hidden, async () => '/x')).text()).rejects.toThrow();
  });
});

/** A byte stream (what fetch bodies are) that hands over `bytes` one chunk of `size` at a time. */
function byteStream(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    type: 'bytes',
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

describe('issue #12: the GET event stream is scanned on bytes, to the end only if its first event is an endpoint', () => {
  it('delivers a multi-megabyte GET event stream byte for byte', async () => {
    const events = 8 * 1024; // 1 KiB each: 8 MiB
    const response = await callProxy({ config: proxyConfig('/big/mcp'), path: `/mcp?bytes=${events * 1024}&numbered`, init: SSE_GET });
    expect(response.status).toBe(200);
    expect(response.headers.get('Content-Type')).toBe('text/event-stream');
    const encoder = new TextEncoder();
    let expected: Uint8Array = new Uint8Array(0);
    let expectedFrom = 0; // index of the next expected event not yet in `expected`
    let offset = 0; // bytes of `expected` already matched
    let total = 0;
    let mismatchAt = -1;
    for await (const chunk of response.body!) {
      for (let k = 0; k < chunk.length; k++) {
        if (offset === expected.length) {
          expected = encoder.encode(`data: ${String(expectedFrom).padStart(10, '0')}${'x'.repeat(1006)}\n\n`);
          expectedFrom += 1;
          offset = 0;
        }
        if (mismatchAt === -1 && chunk[k] !== expected[offset]) mismatchAt = total + k;
        offset += 1;
      }
      total += chunk.length;
    }
    expect(mismatchAt).toBe(-1);
    expect(total).toBe(events * 1024);
  });

  it.each([
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ])('rewrites an endpoint event split into one-byte chunks of a byte stream (%s line ends)', async (_name, eol) => {
    const original = `: hi${eol}${eol}event: endpoint${eol}id: 5${eol}data: /message?sessionId=abc${eol}${eol}event: message${eol}data: {"a":1}${eol}${eol}`;
    const expected = `: hi${eol}${eol}event: endpoint${eol}id: 5${eol}data: /mcp/x?sessionId=abc${eol}${eol}event: message${eol}data: {"a":1}${eol}${eol}`;
    const body = byteStream(new TextEncoder().encode(original), 1);
    expect(await new Response(rewriteEndpointEvents(body, async (data) => data.replace('/message', '/mcp/x'))).text()).toBe(expected);
  });

  it('rewrites an endpoint event without a space after the colon, and one whose data comes first', async () => {
    const original = 'event:endpoint\ndata: /message?a=1\n\ndata: /message?b=2\nevent: endpoint\n\n';
    const body = byteStream(new TextEncoder().encode(original), 3);
    const text = await new Response(rewriteEndpointEvents(body, async (data) => data.replace('/message', '/mcp/x'))).text();
    expect(text).toBe('event:endpoint\ndata: /mcp/x?a=1\n\nevent: endpoint\ndata: /mcp/x?b=2\n\n');
    expect(text).not.toContain('data: /message');
  });

  it('in a legacy stream, still rewrites an endpoint event after megabytes of other events, and ends the stream if it is refused', async () => {
    // The first event is the endpoint event, as the legacy transport sends it: the whole stream is watched.
    const first = 'event: endpoint\ndata: /message?sessionId=first\n\n';
    const others = 'event: message\ndata: {"n":1}\n\n'.repeat(100_000);
    const late = `${first}${others}event: endpoint\r\ndata: /message?sessionId=late\r\n\r\n`;
    const rewrite = async (data: string) => data.replace('/message', '/mcp/x');
    const rewritten = rewriteEndpointEvents(new Blob([late]).stream(), rewrite);
    expect(await new Response(rewritten).text()).toBe(
      `event: endpoint\ndata: /mcp/x?sessionId=first\n\n${others}event: endpoint\r\ndata: /mcp/x?sessionId=late\r\n\r\n`,
    );

    let seen = '';
    const refused = rewriteEndpointEvents(new Blob([late]).stream(), async (data) => (data.includes('late') ? undefined : rewrite(data)));
    await expect(
      (async () => {
        for await (const chunk of refused) seen += new TextDecoder().decode(chunk, { stream: true });
      })(),
    ).rejects.toThrow();
    expect(seen.startsWith('event: endpoint\ndata: /mcp/x?sessionId=first\n\n')).toBe(true);
    expect(seen).not.toContain('/message?sessionId=late');
  });

  it.each([
    ['a message event', 'event: message\ndata: {"jsonrpc":"2.0","method":"ping"}\n\n'],
    ['a bare data line', 'data\n\n'],
    ['a CRLF event after comments', ': ping\r\n\r\ndata:{"n":1}\r\n\r\n'],
  ])('decided behaviour: a stream whose first event is %s is not legacy, and a later endpoint event passes byte for byte', async (_name, first) => {
    // A Streamable HTTP client never acts on endpoint events, and the first event, which decides,
    // is the upstream's alone (see rewriteEndpointEvents).
    const original = `${first}event: endpoint\ndata: http://upstream.example/message?sessionId=s\n\ndata: 2\n\n`;
    const rewrite = vi.fn(async () => '/mcp/x');
    for (const size of [1, 7, 1 << 20]) {
      const body = byteStream(new TextEncoder().encode(original), size);
      expect(await new Response(rewriteEndpointEvents(body, rewrite)).text()).toBe(original);
    }
    expect(await new Response(rewriteEndpointEvents(new Blob([original]).stream(), rewrite)).text()).toBe(original);
    expect(rewrite).not.toHaveBeenCalled();
  });

  it.each([
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ])('recognises a first endpoint event after a byte order mark, comments, blank lines and data-less fields (%s), in one-byte chunks', async (_name, eol) => {
    const before = `\uFEFF: stream open${eol}${eol}${eol}: ping${eol}id: 7${eol}retry: 1000${eol}${eol}${eol}`;
    const original = `${before}event: endpoint${eol}data: /message?sessionId=abc${eol}${eol}data: 1${eol}${eol}event: endpoint${eol}data: /message?sessionId=again${eol}${eol}`;
    const expected = `${before}event: endpoint${eol}data: /mcp/x?sessionId=abc${eol}${eol}data: 1${eol}${eol}event: endpoint${eol}data: /mcp/x?sessionId=again${eol}${eol}`;
    const body = byteStream(new TextEncoder().encode(original), 1);
    const bytes = await new Response(rewriteEndpointEvents(body, async (data) => data.replace('/message', '/mcp/x'))).arrayBuffer();
    // Decoded keeping the byte order mark, which Response.text() would drop.
    expect(new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(bytes)).toBe(expected);
  });

  it('recognises an endpoint event that starts the stream after a byte order mark', async () => {
    const body = byteStream(new TextEncoder().encode('\uFEFFevent: endpoint\ndata: /message\n\ndata: 1\n\n'), 1);
    const text = await new Response(rewriteEndpointEvents(body, async () => '/mcp/x')).text();
    expect(text).toBe('event: endpoint\ndata: /mcp/x\n\ndata: 1\n\n');
  });

  it('passes the first event on as soon as it is complete, and the rest as it comes', async () => {
    let push: ReadableStreamDefaultController<Uint8Array> | undefined;
    const body = new ReadableStream<Uint8Array>({ start: (controller) => void (push = controller) });
    const reader = rewriteEndpointEvents(body, async () => '/x').getReader();
    const encoder = new TextEncoder();
    const decoder = new TextDecoder();
    push?.enqueue(encoder.encode(': ping\n\ndata: 1\n\ndata: 2'));
    let seen = '';
    while (!seen.endsWith('data: 2')) seen += decoder.decode((await reader.read()).value);
    expect(seen).toBe(': ping\n\ndata: 1\n\ndata: 2');
    push?.enqueue(encoder.encode('\n\n'));
    expect(decoder.decode((await reader.read()).value)).toBe('\n\n');
    await reader.cancel();
  });

  it('cancels the upstream body when the client goes away, before and after the first event', async () => {
    for (const sent of ['', ': ping\n\n', 'data: 1\n\n']) {
      let cancelled: unknown;
      let push: ReadableStreamDefaultController<Uint8Array> | undefined;
      const body = new ReadableStream<Uint8Array>({
        start: (controller) => void (push = controller),
        cancel: (reason) => void (cancelled = reason),
      });
      const reader = rewriteEndpointEvents(body, async () => '/x').getReader();
      if (sent) {
        push?.enqueue(new TextEncoder().encode(sent));
        await reader.read();
      }
      await reader.cancel(new Error('client gone'));
      // The runtime tells the writing side of the output at its next write, i.e. the upstream's next chunk.
      push?.enqueue(new TextEncoder().encode('data: 9\n\n'));
      await vi.waitFor(() => expect(String(cancelled)).toBe('Error: client gone'));
    }
  });

  it('ends the client side with an error when the upstream fails after the first event', async () => {
    let push: ReadableStreamDefaultController<Uint8Array> | undefined;
    const body = new ReadableStream<Uint8Array>({ start: (controller) => void (push = controller) });
    const reader = rewriteEndpointEvents(body, async () => '/x').getReader();
    push?.enqueue(new TextEncoder().encode('data: 1\n\n'));
    await reader.read();
    push?.error(new Error('upstream failed'));
    await expect(reader.read()).rejects.toThrow();
  });
});

describe('issue #17: a stream the tool policy reads is parsed once, under the same endpoint rules', () => {
  type Rewrite = (data: string) => Promise<string | undefined>;
  /** The two ways a GET stream is read: the byte scanner alone, or the one event-by-event pass under a tool policy. */
  const passes: Array<[string, (body: ReadableStream<Uint8Array>, rewrite: Rewrite) => ReadableStream<Uint8Array>]> = [
    ['the byte scanner', rewriteEndpointEvents],
    ['the event pass', (body, rewrite) => rewriteJsonRpcEvents(body, () => undefined, { endpoint: rewrite })],
  ];
  const rewrite: Rewrite = async (data) => (data.includes('elsewhere') ? undefined : data.replace('/message', '/mcp/x'));
  /** What the client reads, or `ends` when the stream ends with an error; and all it was given before. */
  async function read(stream: ReadableStream<Uint8Array>): Promise<{ text: string; ended: boolean }> {
    let text = '';
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
      return { text, ended: false };
    } catch {
      return { text, ended: true };
    }
  }
  const splits = (bytes: Uint8Array, sizes: number[]) => sizes.map((size) => byteStream(bytes, size));
  const cases: Array<[string, string, string, boolean]> = [
    [
      'an endpoint first after a byte order mark',
      '\uFEFFevent: endpoint\ndata: /message\n\ndata: 1\n\n',
      'event: endpoint\ndata: /mcp/x\n\ndata: 1\n\n',
      false,
    ],
    [
      'comments and a field-only block first, CR, CRLF and LF line ends, and a later endpoint',
      ': hi\r\rid: 1\n\nevent: endpoint\rdata: /message?a\r\rdata: {"n":1}\r\n\r\nevent:endpoint\r\ndata: /message?b\r\n\r\n',
      ': hi\r\rid: 1\n\nevent: endpoint\rdata: /mcp/x?a\r\rdata: {"n":1}\r\n\r\nevent:endpoint\r\ndata: /mcp/x?b\r\n\r\n',
      false,
    ],
    ['an endpoint whose data comes before its event line', 'data: /message\nevent: endpoint\n\n', 'event: endpoint\ndata: /mcp/x\n\n', false],
    ['an endpoint whose blank line is a CR at the very end', 'event: endpoint\rdata: /message\r\r', 'event: endpoint\rdata: /mcp/x\r\r', false],
    [
      'a first event that is not an endpoint',
      'data: 1\n\nevent: endpoint\ndata: http://elsewhere.example/m\n\n',
      'data: 1\n\nevent: endpoint\ndata: http://elsewhere.example/m\n\n',
      false,
    ],
    [
      'a later endpoint that is refused',
      'event: endpoint\ndata: /message\n\ndata: 1\n\nevent: endpoint\ndata: http://elsewhere.example/m\n\n',
      'event: endpoint\ndata: /mcp/x\n\ndata: 1\n\n',
      true,
    ],
    [
      'an unterminated endpoint at the end',
      'event: endpoint\ndata: /message\n\nevent: endpoint\ndata: /message?late',
      'event: endpoint\ndata: /mcp/x\n\n',
      false,
    ],
  ];

  describe.each(passes)('%s', (_pass, pass) => {
    it.each(cases)('%s: however the bytes are split', async (_name, input, expected, ends) => {
      const bytes = new TextEncoder().encode(input);
      const cuts = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
      const bodies = [...splits(bytes, [1, 2, 5, bytes.length]), ...cuts.map((cut) => new Blob([bytes.slice(0, cut), bytes.slice(cut)]).stream())];
      for (const body of bodies) {
        const { text, ended } = await read(pass(body, rewrite));
        // A stream that ends may end before what came ahead of the refused endpoint; never with it.
        if (ends) expect(expected.startsWith(text)).toBe(true);
        else expect(text).toBe(expected);
        expect(ended).toBe(ends);
      }
    });

    it('ends the stream at an endpoint event over 64 KiB, and never passes it on', async () => {
      const data = `/message?${'x'.repeat(70_000)}`;
      const bytes = new TextEncoder().encode(`event: endpoint\ndata: /message\n\nevent: endpoint\ndata: ${data}\n\n`);
      for (const body of splits(bytes, [1000, bytes.length])) {
        const { text, ended } = await read(pass(body, async (d) => d));
        expect(ended).toBe(true);
        expect(text).not.toContain('xxxxxxxxxx');
      }
    });
  });

  it('rewrites the endpoint events and the JSON-RPC messages of one stream in one pass, a byte at a time', async () => {
    const list = { jsonrpc: '2.0', id: 3, result: { tools: [{ name: 'delete_x' }, { name: 'get_x' }] } };
    const input = `event: endpoint\r\ndata: /message?s=1\r\n\r\nevent: message\r\ndata: ${JSON.stringify(list)}\r\n\r\nevent: endpoint\ndata: /message?s=2\n\n`;
    const hideDelete = (m: unknown) => {
      const tools = (m as typeof list).result?.tools;
      return tools ? { ...(m as typeof list), result: { tools: tools.filter((t) => !t.name.startsWith('delete_')) } } : undefined;
    };
    const out = rewriteJsonRpcEvents(byteStream(new TextEncoder().encode(input), 1), hideDelete, { endpoint: rewrite });
    expect(await new Response(out).text()).toBe(
      `event: endpoint\r\ndata: /mcp/x?s=1\r\n\r\nevent: message\r\ndata: {"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"get_x"}]}}\r\n\r\nevent: endpoint\ndata: /mcp/x?s=2\n\n`,
    );
  });

  describe('through the proxy, under a tool policy', () => {
    const policy = { UPSTREAM_TOOLS: JSON.stringify({ deny: ['delete_*'] }) };

    it('announces a sealed endpoint that leads to the upstream, and filters a tools/list answered on the stream', async () => {
      const t = tag();
      const config = proxyConfig('/legacy/sse', policy);
      const response = await callProxy({ config, path: `/mcp?t=${t}&announce=relative`, init: SSE_GET });
      const reader = response.body!.getReader();
      const seen = await readUntil(reader, '\r\n\r\n');
      const endpoint = /event: endpoint\r\ndata: (.*)\r\n\r\n/.exec(seen)?.[1] ?? '';
      expect(endpoint).toMatch(SEALED_ENDPOINT);
      expect(seen).not.toContain('/legacy/message');
      const posted = await callProxy({ config, path: endpoint, init: rpcPost({ jsonrpc: '2.0', id: 12, method: 'tools/list' }) });
      expect(posted.status).toBe(202);
      expect((await received(t, 2))[1]).toMatchObject({ path: '/legacy/message', query: `?sessionId=${t}` });
      const answer = await readUntil(reader, '\n\n');
      expect(answer).toContain('"get_x"');
      expect(answer).not.toContain('delete_x');
      await reader.cancel();
    });

    it('ends the stream rather than announce an endpoint on another host', async () => {
      const response = await callProxy({ config: proxyConfig('/legacy/sse', policy), path: `/mcp?t=${tag()}&announce=foreign`, init: SSE_GET });
      const { text, ended } = await read(response.body!);
      expect(ended).toBe(true);
      expect(text).not.toContain('upstream-elsewhere');
      expect(text).not.toContain('endpoint');
      expect(logs.parsed().map((line) => line.event)).toContain('mcp_proxy_endpoint_refused');
    });
  });
});

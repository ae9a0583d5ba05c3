import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CLIENT_HEADERS,
  callProxy,
  captureLogs,
  expectJsonRpcError,
  openSession,
  proxyConfig,
  readRest,
  readUntil,
  received,
  release,
  rpcPost,
  tag,
  upstreamSawAbort,
} from './fixtures/proxy';

const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'slow' } };

beforeEach(() => {
  captureLogs();
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('proxy: streaming', () => {
  it('streams the first SSE event of a POST answer while the upstream still holds the stream open', async () => {
    const t = tag();
    const response = await callProxy({ config: proxyConfig('/hold/mcp'), path: `/mcp?t=${t}`, init: rpcPost(call) });
    expect(response.status).toBe(200);
    expect(response.headers.get('Content-Type')).toBe('text/event-stream');
    expect(response.headers.get('Mcp-Session-Id')).toMatch(/^[\w-]+\.[\w-]+$/);
    expect(response.headers.get('Set-Cookie')).toBeNull();

    const reader = response.body!.getReader();
    const first = await readUntil(reader, '"progress":1}}\n\n');
    // The upstream has not been released yet, so this event cannot have been buffered to the end.
    expect(first).not.toContain('"done":true');
    await release(t);
    expect(await readRest(reader)).toContain('event: message\nid: 2\ndata: {"jsonrpc":"2.0","id":1,"result":{"done":true}}\n\n');
  });

  it('streams the GET server-to-client stream, passing Last-Event-ID for resumption', async () => {
    const config = proxyConfig('/hold/mcp');
    const session = await openSession(proxyConfig('/json/mcp'));
    const t = tag();
    const response = await callProxy({
      config,
      path: `/mcp?t=${t}`,
      init: { method: 'GET', headers: { ...CLIENT_HEADERS, Accept: 'text/event-stream', 'Mcp-Session-Id': session.handle, 'Last-Event-ID': '1' } },
    });
    const reader = response.body!.getReader();
    expect(await readUntil(reader, '\n\n')).toContain('id: 1');
    expect((await received(t))[0]?.headers).toMatchObject({ 'last-event-id': '1', accept: 'text/event-stream', 'mcp-session-id': `sess-${session.t}` });
    await release(t);
    expect(await readRest(reader)).toContain('id: 2');
  });

  it('cancels the upstream request when the client goes away mid-stream', async () => {
    const t = tag();
    const response = await callProxy({ config: proxyConfig('/hold/mcp'), path: `/mcp?t=${t}`, init: rpcPost(call) });
    const reader = response.body!.getReader();
    await readUntil(reader, '\n\n');
    await reader.cancel();
    expect(await upstreamSawAbort(t)).toEqual({ aborted: true });
  });

  it('cancels the upstream request when the client goes away before the upstream answers', async () => {
    const t = tag();
    const client = new AbortController();
    const pending = callProxy({ config: proxyConfig('/stall/mcp'), path: `/mcp?t=${t}`, init: { ...rpcPost(call), signal: client.signal } });
    await received(t);
    client.abort();
    expect(await upstreamSawAbort(t)).toEqual({ aborted: true });
    expect((await pending).status).toBe(499);
  });

  it('passes a large streamed answer through whole', async () => {
    const bytes = 8 * 1024 * 1024;
    const response = await callProxy({ config: proxyConfig('/big/mcp'), path: `/mcp?bytes=${bytes}`, init: rpcPost(call) });
    let total = 0;
    for await (const chunk of response.body!) total += chunk.byteLength;
    expect(total).toBe(bytes);
  });
});

describe('proxy: header timeout', () => {
  it('answers 504 when the upstream sends no headers within UPSTREAM_TIMEOUT, and cancels it', async () => {
    vi.useFakeTimers();
    const t = tag();
    const pending = callProxy({ config: proxyConfig('/stall/mcp', { UPSTREAM_TIMEOUT: '1' }), path: `/mcp?t=${t}`, init: rpcPost({ ...call, id: 'slow-1' }) });
    await received(t);
    vi.advanceTimersByTime(1000);
    await expectJsonRpcError(await pending, 504, -32005, 'slow-1');
    expect(await upstreamSawAbort(t)).toEqual({ aborted: true });
  });

  it('does not time out a stream that stays open after its headers', async () => {
    vi.useFakeTimers();
    const t = tag();
    const response = await callProxy({ config: proxyConfig('/hold/mcp', { UPSTREAM_TIMEOUT: '1' }), path: `/mcp?t=${t}`, init: rpcPost(call) });
    const reader = response.body!.getReader();
    await readUntil(reader, '\n\n');
    vi.advanceTimersByTime(5000);
    await release(t);
    expect(await readRest(reader)).toContain('"done":true');
  });
});

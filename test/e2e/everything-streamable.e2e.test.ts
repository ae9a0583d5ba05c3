/**
 * The gateway fronting the MCP reference server "everything" over Streamable HTTP: what a client
 * sees of streaming. Progress arrives while a tool runs (not buffered to the end), the GET stream
 * carries server-initiated notifications, a broken stream resumes with Last-Event-ID, DELETE ends
 * the session, and Mcp-Session-Id travels both ways.
 */
import { randomBytes } from 'node:crypto';
import { LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Everything, startEverything } from './support/everything';
import { type Connected, connectWithOAuth } from './support/mcp-client';
import { type E2EStack, need, startE2EStack } from './support/stack';
import { readAll } from './support/streams';

const PROTOCOL_VERSION = '2025-11-25';
const upstreamToken = `everything-pat-${randomBytes(16).toString('hex')}`;

/** What the SDK client's GET (server-to-client) streams carried, read alongside the client. */
interface GetStream {
  requestHeaders: Headers;
  response: Response;
  text: string;
}
const getStreams: GetStream[] = [];

let everything: Everything | undefined;
let stack: E2EStack | undefined;
let connected: Connected | undefined;

beforeAll(async () => {
  everything = await startEverything('streamableHttp');
  stack = await startE2EStack({ upstreamUrl: everything.url, upstreamToken });
  connected = await connectWithOAuth(stack.urls.mcp, {
    wrapFetch: (inner) => async (url, init) => {
      const response = await inner(url, init);
      if ((init?.method ?? 'GET') === 'GET' && /^text\/event-stream/.test(response.headers.get('content-type') ?? '')) {
        const entry: GetStream = { requestHeaders: new Headers(init?.headers), response, text: '' };
        getStreams.push(entry);
        void readAll(response.clone(), (chunk) => (entry.text += chunk));
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

describe('gateway in front of server-everything (Streamable HTTP)', () => {
  it('streams progress notifications as the tool sends them, before its result', async () => {
    const { client } = need(connected);
    const started = performance.now();
    const progress: { progress: number; total?: number; at: number }[] = [];
    const result = await client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 3, steps: 3 } }, undefined, {
      onprogress: ({ progress: value, total }) => progress.push({ progress: value, total, at: performance.now() - started }),
    });
    const resultAt = performance.now() - started;

    expect(JSON.stringify(result.content)).toContain('Long running operation completed');
    expect(progress.map((p) => [p.progress, p.total])).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
    // One step a second upstream. A proxy that buffered the response would hand all three over
    // together with the result, about 3 s in.
    const [first, second, third] = progress as [(typeof progress)[0], (typeof progress)[0], (typeof progress)[0]];
    expect(resultAt - first.at, `progress at ${progress.map((p) => Math.round(p.at))} ms, result at ${Math.round(resultAt)} ms`).toBeGreaterThan(1_500);
    expect(second.at - first.at).toBeGreaterThan(400);
    expect(third.at - second.at).toBeGreaterThan(400);
  });

  it('carries server-initiated notifications on the GET stream, with Mcp-Session-Id passed both ways', async () => {
    const { client, transport } = need(connected);
    const sessionId = transport.sessionId;
    expect(sessionId, 'the upstream session id reached the client on initialize').toMatch(/^[0-9a-f-]{36}$/);

    // The SDK opens the GET stream by itself after initialization.
    await vi.waitFor(() => expect(getStreams.length).toBeGreaterThan(0), { timeout: 10_000 });
    const stream = getStreams[0] as GetStream;
    expect(stream.response.status).toBe(200);
    expect(stream.requestHeaders.get('mcp-session-id')).toBe(sessionId);
    expect(stream.response.headers.get('mcp-session-id')).toBe(sessionId);

    const logs: string[] = [];
    const updated: string[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(String(n.params.data)));
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updated.push(n.params.uri));

    const { resources } = await client.listResources();
    const uri = resources[0]?.uri;
    expect(uri).toBeTruthy();
    // The server acknowledges a subscription with a log message sent outside any request: only
    // the GET stream can carry it.
    await client.subscribeResource({ uri: uri as string });
    await vi.waitFor(() => expect(logs.join('\n')).toContain(`Received Subscribe Resource request for URI: ${uri}`), { timeout: 5_000 });

    // Simulated updates: one at once, then every 5 s, again on the GET stream.
    await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    try {
      await vi.waitFor(() => expect(updated).toContain(uri), { timeout: 8_000 });
    } finally {
      await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    }
    await client.unsubscribeResource({ uri: uri as string });

    await vi.waitFor(() => {
      expect(stream.text).toContain('notifications/resources/updated');
      expect(stream.text).toContain('Received Subscribe Resource request');
    });
  });

  it('replays what a broken stream missed when the client resumes with Last-Event-ID, and ends the session on DELETE', async () => {
    const { provider, recorder } = need(connected);
    const mcp = need(stack).urls.mcp;
    const fetch = recorder.fetch;
    const token = provider.savedTokens?.access_token;
    expect(token).toBeTruthy();
    const auth = { Authorization: `Bearer ${token}`, Accept: 'application/json, text/event-stream' };
    const post = (headers: Record<string, string>, message: unknown, signal?: AbortSignal) =>
      fetch(mcp, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify(message), signal });

    // A session of its own.
    const init = await post(auth, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'e2e-raw', version: '1.0.0' } },
    });
    expect(init.status).toBe(200);
    const sessionId = init.headers.get('mcp-session-id');
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
    await readUntil(new SseReader(bodyOf(init)), (e) => e.message?.id === 1);
    const session = { ...auth, 'Mcp-Session-Id': sessionId as string, 'MCP-Protocol-Version': PROTOCOL_VERSION };
    expect((await post(session, { jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);

    // A long tool call answered as an SSE stream; read up to its first progress, then drop it.
    const dropped = new AbortController();
    const steps = 4;
    const seconds = 2;
    const call = await post(
      session,
      {
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'trigger-long-running-operation', arguments: { duration: seconds, steps }, _meta: { progressToken: 'resume-me' } },
      },
      dropped.signal,
    );
    expect(call.status).toBe(200);
    expect(call.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const before = await readUntil(new SseReader(bodyOf(call)), (e) => e.message?.params?.progress === 1);
    const lastSeen = before.at(-1)?.id;
    expect(lastSeen, 'events carry ids to resume from').toBeTruthy();
    dropped.abort();
    expect(before.some((e) => e.message?.id === 2)).toBe(false);

    // Let the operation finish upstream while nobody listens. (Resuming earlier would not work
    // with this server: its event store hands back an event id where the SDK expects a stream id,
    // so events sent after a resume are lost. The gateway plays no part in that.)
    await sleep(((steps - 1) * seconds * 1_000) / steps + 1_000);

    const resumedAbort = new AbortController();
    const resumed = await fetch(mcp, {
      headers: { ...session, Accept: 'text/event-stream', 'Last-Event-ID': lastSeen as string },
      signal: resumedAbort.signal,
    });
    try {
      expect(resumed.status).toBe(200);
      expect(resumed.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(resumed.headers.get('mcp-session-id')).toBe(sessionId);
      const reader = new SseReader(bodyOf(resumed));
      const replayed = await readUntil(reader, (e) => e.message?.id === 2);

      const progress = replayed.filter((e) => e.message?.method === 'notifications/progress').map((e) => e.message?.params?.progress);
      expect(progress, 'the missed progress notifications, and only those').toEqual([2, 3, 4]);
      const result = replayed.find((e) => e.message?.id === 2)?.message;
      expect(JSON.stringify(result?.result)).toContain('Long running operation completed');
      for (const event of replayed) expect(event.id, 'every replayed event has an id').toBeTruthy();
      const seenIds = new Set(before.map((e) => e.id));
      expect(replayed.filter((e) => seenIds.has(e.id))).toEqual([]);

      // DELETE ends the session: upstream it closes the open stream, which the client sees end.
      const deleted = await fetch(mcp, { method: 'DELETE', headers: session });
      expect(deleted.status).toBe(200);
      await expect(reader.untilEnd(5_000)).resolves.toBe('ended');
    } finally {
      resumedAbort.abort();
    }

    const afterDelete = await post(session, { jsonrpc: '2.0', id: 3, method: 'tools/list' });
    expect(afterDelete.status, 'the ended session is refused').toBeGreaterThanOrEqual(400);
    expect(afterDelete.status).toBeLessThan(500);
    await afterDelete.body?.cancel();
  });

  it('never lets the upstream token reach the client', async () => {
    const { recorder } = need(connected);
    await recorder.expectNever(upstreamToken);
    const seen = await recorder.everything();
    // The recorder did capture the streams above, so the check covered them.
    expect(seen).toContain('notifications/progress');
    expect(seen).toContain('notifications/resources/updated');
  });
});

interface JsonRpcMessage {
  id?: string | number;
  method?: string;
  params?: { progress?: number; [key: string]: unknown };
  result?: unknown;
}

interface SseEvent {
  id: string | undefined;
  event: string | undefined;
  data: string;
  message: JsonRpcMessage | undefined;
}

/** A minimal SSE parser over a response body, as a client reads it. */
class SseReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffer = '';
  private readonly queued: SseEvent[] = [];
  private ended = false;

  constructor(body: ReadableStream<Uint8Array>) {
    this.reader = body.getReader();
  }

  /** The next event, or 'end' when the stream ends (or is aborted); throws after `timeoutMs`. */
  async next(timeoutMs = 10_000): Promise<SseEvent | 'end'> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const event = this.queued.shift();
      if (event) return event;
      if (this.ended) return 'end';
      const chunk = await withTimeout(
        this.reader.read().catch(() => ({ done: true as const, value: undefined })),
        deadline - Date.now(),
      );
      if (chunk.done) this.ended = true;
      else this.parse(this.decoder.decode(chunk.value, { stream: true }));
    }
  }

  /** Reads on until the stream ends; 'ended', or 'timeout' if it is still open after `timeoutMs`. */
  async untilEnd(timeoutMs: number): Promise<'ended' | 'timeout'> {
    const deadline = Date.now() + timeoutMs;
    try {
      while ((await this.next(Math.max(1, deadline - Date.now()))) !== 'end');
      return 'ended';
    } catch {
      return 'timeout';
    }
  }

  private parse(text: string): void {
    this.buffer += text;
    for (;;) {
      const match = /\r\n\r\n|\n\n|\r\r/.exec(this.buffer);
      if (!match) return;
      const block = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      let id: string | undefined;
      let event: string | undefined;
      const data: string[] = [];
      let fields = 0;
      for (const line of block.split(/\r\n|\r|\n/)) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        fields++;
        if (field === 'id') id = value;
        else if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (fields === 0) continue;
      const joined = data.join('\n');
      let message: JsonRpcMessage | undefined;
      try {
        message = joined.trim() ? (JSON.parse(joined) as JsonRpcMessage) : undefined;
      } catch {
        message = undefined;
      }
      this.queued.push({ id, event, data: joined, message });
    }
  }
}

/** Events up to and including the first that matches; fails if the stream ends or stalls first. */
async function readUntil(reader: SseReader, done: (event: SseEvent) => boolean, timeoutMs = 10_000): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  for (;;) {
    const event = await reader.next(timeoutMs);
    if (event === 'end') throw new Error(`the stream ended before the awaited event; it carried ${JSON.stringify(events)}`);
    events.push(event);
    if (done(event)) return events;
  }
}

function bodyOf(response: Response): ReadableStream<Uint8Array> {
  if (!response.body) throw new Error(`a ${response.status} response without a body`);
  return response.body;
}


function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`nothing arrived within ${ms} ms`)), Math.max(0, ms));
    }),
  ]).finally(() => clearTimeout(timer));
}


const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

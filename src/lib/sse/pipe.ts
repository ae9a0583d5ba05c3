/**
 * The plumbing of the legacy HTTP+SSE stream: the upstream body read into one reused buffer, each
 * chunk through the scanner (scanner.ts), and a native pipe for the rest once the stream is known
 * not to be a legacy one.
 */
import { type EndpointRewrite, endpointEventScanner } from './scanner';

/** Bytes asked of the upstream per read: few reads per MiB, and one buffer, reused, for the whole stream. */
const READ_BUFFER_BYTES = 256 * 1024;

/**
 * Bytes the output may queue ahead of the client. With none (the default), the pipe into the
 * IdentityTransformStream waits for the client to take each chunk before reading the next, which
 * cost a fifth of the throughput (issue #12); this much keeps both sides busy and memory bounded.
 */
const OUTPUT_QUEUE_BYTES = 1024 * 1024;

/**
 * Pipes an SSE body through, replacing the data of `endpoint` events with `rewrite(data)`.
 *
 * How far into the stream endpoint events are looked for (issue #12): until the first dispatched
 * event, and, if that event is an `endpoint` event, to the end of the stream.
 *
 * - The first dispatched event decides the stream's kind. An event is dispatched at its blank line
 *   if it has at least one `data` line (WHATWG HTML §9.2.6); comment-only blocks (`: ping`), blank
 *   lines and field-only blocks before it are scanned and passed on, and do not decide anything.
 * - First event `endpoint`: this is the legacy HTTP+SSE transport, whose server must send the
 *   endpoint event first (MCP 2024-11-05). The whole stream stays under the byte-level scan, so a
 *   later endpoint event is still rewritten, or ends the stream if it is refused.
 * - First event anything else: a Streamable HTTP stream (or an upstream that is not following the
 *   legacy transport). The bytes read so far are passed on and the rest of the body is handed to a
 *   native pipe (`pipeTo` into an IdentityTransformStream): no JavaScript runs per chunk, which is
 *   what lets the GET stream stream as fast as a POST answer, with flat memory.
 *
 * Why passing a later `endpoint` event untouched in the second case is safe:
 * - The decision rests on the upstream's first event, which the upstream alone writes; a client
 *   (or anyone able to make the upstream echo content into messages) cannot influence whether the
 *   stream is scanned. An upstream that wants to must send its endpoint event first anyway.
 * - A Streamable HTTP client never acts on `endpoint` events: it POSTs to the URL it was configured
 *   with, so a later endpoint event cannot redirect it anywhere, nor send its token elsewhere.
 * - A legacy client takes the first endpoint event, which on a legacy stream is always rewritten
 *   (or refused), as is every one after it.
 * - The upstream can always name its own host in message content (a JSON-RPC result, a log line),
 *   which the gateway does not and cannot police; POST answers already pass untouched. Hiding the
 *   upstream's host is about the URLs the gateway itself hands the client to use, and those are
 *   only legacy endpoint events.
 *
 * While scanning, the upstream is read with a BYOB reader into one reused buffer, which hands
 * over whatever has arrived, up to 256 KiB, without waiting for more; everything a chunk completes
 * is written before the next read, so no event is held back. The output is an
 * IdentityTransformStream with a queue of up to 1 MiB: a write resolves once its bytes are queued,
 * so what is written of the read buffer is copied first, and backpressure reaches the upstream. A client that goes away
 * cancels the upstream body in both phases (the pump's failed write, or pipeTo); the runtime tells
 * an IdentityTransformStream's writing side at its next write, so at the upstream's next chunk, as
 * before issue #12. Errors end both sides and are never left unhandled.
 */
export function rewriteEndpointEvents(body: ReadableStream<Uint8Array>, rewrite: EndpointRewrite): ReadableStream<Uint8Array> {
  const { readable, writable } = new IdentityTransformStream({ highWaterMark: OUTPUT_QUEUE_BYTES });
  const writer = writable.getWriter();
  const scanner = endpointEventScanner(rewrite);
  const read = chunkReader(body);

  const pump = async () => {
    try {
      for (let chunk = await read.next(); chunk; chunk = await read.next()) {
        const out: Uint8Array[] = [];
        await scanner.scan(chunk, out);
        // Everything the chunk completed leaves before the next read: no event waits for more bytes.
        // Parts that are views of the read buffer are copied: a write may resolve while its bytes
        // wait in the output's queue, and the buffer is read into again.
        for (const part of out) await writer.write(part.buffer === chunk.buffer ? part.slice() : part);
        read.reuse(chunk);
        if (scanner.kind() === 'plain') {
          // Not the legacy transport: the rest of the body goes through a native pipe, untouched.
          read.release();
          writer.releaseLock();
          // pipeTo cancels the body if the client goes away and aborts the output if the body
          // fails; either way the pipe has ended both sides, and its rejection is expected.
          await body.pipeTo(writable).catch(() => {});
          return;
        }
      }
      const out: Uint8Array[] = [];
      await scanner.finish(out);
      for (const part of out) await writer.write(part);
      await writer.close();
    } catch (error) {
      // A refused endpoint, an upstream failure or a client gone away: end both sides.
      await Promise.all([writer.abort(error).catch(() => {}), read.cancel(error)]);
    }
  };
  void pump();
  return readable;
}

interface ChunkReader {
  /** The next chunk, or undefined at the end. */
  next(): Promise<Uint8Array | undefined>;
  /** Gives back a chunk from `next` that nothing refers to any more. */
  reuse(chunk: Uint8Array): void;
  cancel(reason: unknown): Promise<void>;
  /** Releases the body, for it to be piped on; `next` must not be pending. */
  release(): void;
}

/** A BYOB reader into one reused buffer where the body is a byte stream (fetch bodies are), else the default reader. */
function chunkReader(body: ReadableStream<Uint8Array>): ChunkReader {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = body.getReader({ mode: 'byob' });
  } catch {
    // Not a byte stream (e.g. one made in JavaScript): its chunks are already what it has.
  }
  if (!byob) {
    const reader = body.getReader();
    return {
      next: async () => (await reader.read()).value,
      reuse: () => {},
      cancel: (reason) => reader.cancel(reason).catch(() => {}),
      release: () => reader.releaseLock(),
    };
  }
  const bytes = byob;
  let buffer = new ArrayBuffer(READ_BUFFER_BYTES);
  return {
    async next() {
      // The read takes over the buffer and resolves with what has arrived, at least one byte.
      const { value, done } = await bytes.read(new Uint8Array(buffer));
      return done || !value ? undefined : value;
    },
    reuse(chunk) {
      buffer = chunk.buffer.byteLength > 0 ? (chunk.buffer as ArrayBuffer) : new ArrayBuffer(READ_BUFFER_BYTES);
    },
    cancel: (reason) => bytes.cancel(reason).catch(() => {}),
    release: () => bytes.releaseLock(),
  };
}

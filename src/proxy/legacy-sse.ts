/**
 * The HTTP+SSE transport (MCP 2024-11-05): the client GETs an event stream whose `endpoint` event
 * names the URL to POST messages to. Through the gateway that URL must lead back to the gateway.
 *
 * Design: only an endpoint on the upstream's own origin is accepted, and it is announced sealed:
 * `<gateway path>/.endpoint/<base64url(iv | AES-256-GCM(path and query))>`, keyed by HKDF from
 * COOKIE_ENCRYPTION_KEY with a purpose of its own, the upstream and the person's email bound in as
 * additional data. So only paths the upstream itself announced are reachable (mapping arbitrary
 * upstream paths would let any token holder reach any upstream path with the gateway's credential),
 * and, since issue #16, only by the person it was announced to: the query carries the upstream's
 * session id (`/message?sessionId=…`), which another person must neither use nor learn. That holds
 * for an endpoint under UPSTREAM_URL's path as well, which an ordinary `<gateway path>/<rest>` URL
 * would show. An endpoint on another origin ends the stream: the client must never learn or be sent
 * to another host.
 */
import type { Config, UpstreamConfig } from '../config';
import { base64url, fromBase64url } from '../lib/base64url';
import { derivedKey } from '../lib/keys';
import { SIGNED_ENDPOINT_SEGMENT } from './route';

const encoder = new TextEncoder();
const HKDF_INFO = 'mcp-oauth-gateway legacy-sse endpoint v2';
const IV_BYTES = 12;

/** The gateway URL to announce to `email` for an upstream's `endpoint` event data, or undefined to refuse it. */
export async function gatewayEndpointFor(
  data: string,
  upstreamStream: URL,
  upstream: UpstreamConfig,
  config: Config,
  email: string,
): Promise<string | undefined> {
  const announced = URL.canParse(data, upstreamStream.href) ? new URL(data, upstreamStream) : undefined;
  if (!announced || announced.origin !== upstream.url.origin) return undefined;
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const plain = encoder.encode(`${announced.pathname}${announced.search}`);
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: binding(upstream, email) }, await endpointKey(config), plain),
  );
  const token = new Uint8Array(IV_BYTES + sealed.byteLength);
  token.set(iv);
  token.set(sealed, IV_BYTES);
  return `${upstream.path}/${SIGNED_ENDPOINT_SEGMENT}/${base64url(token)}`;
}

/**
 * The upstream URL a sealed endpoint token leads to, or undefined if the token is not one the
 * gateway announced to `email` for this upstream. `search` is the request's own query: the
 * announced URL has none, so one added to it is refused rather than passed on.
 */
export async function upstreamUrlForSignedEndpoint(
  token: string,
  search: string,
  upstream: UpstreamConfig,
  config: Config,
  email: string,
): Promise<URL | undefined> {
  const bytes = fromBase64url(token);
  if (search !== '' || !bytes || bytes.byteLength <= IV_BYTES) return undefined;
  let plain: ArrayBuffer;
  try {
    const iv = bytes.subarray(0, IV_BYTES);
    plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: binding(upstream, email) }, await endpointKey(config), bytes.subarray(IV_BYTES));
  } catch {
    // Altered, sealed for someone else or another upstream, or under another key.
    return undefined;
  }
  const pathAndQuery = new TextDecoder().decode(plain);
  const base = upstream.url;
  const target = URL.canParse(`${base.origin}${pathAndQuery}`) ? new URL(`${base.origin}${pathAndQuery}`) : undefined;
  return target && target.origin === base.origin && `${target.pathname}${target.search}` === pathAndQuery ? target : undefined;
}

/** Thrown inside the stream to end it: the upstream announced an endpoint that cannot be rewritten. */
export class EndpointRefusedError extends Error {
  override readonly name = 'EndpointRefusedError';
}

/**
 * An endpoint event is a short URI; an event this long is passed through rather than held, and if
 * it then turns out to be an endpoint event the stream ends instead of leaking it.
 */
const MAX_HELD_EVENT_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const LOWERCASE_D = 0x64;
const LOWERCASE_E = 0x65;
/** `event: endpoint` is 15 bytes; a longer line cannot name the endpoint event. */
const EVENT_LINE_HEAD = 16;
/** The UTF-8 byte order mark a stream may start with, which an SSE client drops, as `head` holds it. */
const BOM = '\xef\xbb\xbf';

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
export function rewriteEndpointEvents(body: ReadableStream<Uint8Array>, rewrite: (data: string) => Promise<string | undefined>): ReadableStream<Uint8Array> {
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

/**
 * The SSE parsing behind `rewriteEndpointEvents`, on bytes: each chunk is searched natively for line
 * ends (CRLF, LF or CR, WHATWG HTML §9.2.5), only a line starting with `e` has its first bytes
 * looked at, and what passes on is views of the chunk itself. Only an endpoint event is decoded.
 * Line and event state carry across chunks, so a field or a CRLF split between chunks is still
 * recognised.
 *
 * The part of the last event not yet ended by a blank line is held (copied, at most 64 KiB), since
 * an `event: endpoint` line may follow its data lines; a client dispatches an event only at its
 * blank line, so holding it delays nothing. An event that outgrows the cap streams as it comes
 * and, if it turns out to be an endpoint event, ends the stream before its blank line: the client
 * never dispatches it.
 *
 * Until the first dispatched event (one with a `data` line) is complete, `data` lines are noted
 * too; that event decides `kind()`: `legacy` if it is an endpoint event, else `plain`, and then
 * `scan` passes the rest of its chunk on unscanned and must not be called again. A byte order mark
 * at the start of the stream is skipped, as a client skips it, so it cannot hide the first event.
 */
function endpointEventScanner(rewrite: (data: string) => Promise<string | undefined>) {
  let kind: 'undecided' | 'legacy' | 'plain' = 'undecided';
  let firstLine = true; // the stream's first line, which may start with a byte order mark
  let hasData = false; // the current event has a data line: a client dispatches it
  // The current event: the part of it held from earlier chunks, and what is known about it.
  let held: Uint8Array[] = [];
  let heldBytes = 0;
  let isEndpoint = false;
  let passthrough = false; // the event outgrew the cap and streams as it comes
  // The current line: its length so far, and its start while it may be an `event` field.
  let lineBytes = 0;
  let head: string | undefined;
  let afterCR = false; // the last line ended in CR at a chunk's end: an LF next is its CRLF's second half
  let blankCRAtEnd = false; // an endpoint event's blank line did: its terminator is not known yet

  const endEvent = () => {
    held = [];
    heldBytes = 0;
    isEndpoint = false;
    passthrough = false;
    hasData = false;
  };

  /** The rewritten bytes for a complete endpoint event; throws if it must not be passed on. */
  async function rewriteEvent(parts: Uint8Array[], size: number, terminator: string): Promise<Uint8Array> {
    if (size > MAX_HELD_EVENT_BYTES) throw new EndpointRefusedError('oversized endpoint event');
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.byteLength;
    }
    const lines = new TextDecoder().decode(bytes).split(/(?<=\r\n|\r(?!\n)|\n)/);
    lines.pop(); // the blank line
    const data: string[] = [];
    let kept = '';
    for (const raw of lines) {
      const text = raw.replace(/\r?\n$|\r$/, '');
      const colon = text.indexOf(':');
      const field = colon === -1 ? text : text.slice(0, colon);
      if (field !== 'data') kept += raw;
      else data.push(text.slice(colon + 1).replace(/^ /, ''));
    }
    const rewritten = await rewrite(data.join('\n').trim());
    if (rewritten === undefined) throw new EndpointRefusedError('upstream announced an endpoint outside its origin');
    // The event's other fields (event, id, retry) stay; its data lines become one, ended like the event.
    return encoder.encode(`${kept}data: ${rewritten}${terminator}${terminator}`);
  }

  /** Appends to `out` what of `chunk` (and of the held event) can be passed on now. */
  async function scan(chunk: Uint8Array, out: Uint8Array[]): Promise<void> {
    const n = chunk.byteLength;
    if (n === 0) return;
    let i = 0;
    let runStart = 0; // chunk bytes from here on are not in `out` yet
    let eventStart = held.length > 0 || passthrough ? -1 : 0; // -1: the event began in an earlier chunk

    if (blankCRAtEnd) {
      blankCRAtEnd = false;
      i = chunk[0] === LF ? 1 : 0;
      out.push(await rewriteEvent([...held, chunk.subarray(0, i)], heldBytes + i, i === 1 ? '\r\n' : '\r'));
      endEvent();
      runStart = i;
      eventStart = i;
    } else if (afterCR && chunk[0] === LF) {
      i = 1;
      if (eventStart === 0) eventStart = 1;
    }
    afterCR = false;

    let nextLF = -2; // -2: not searched yet, -1: none left in this chunk
    let nextCR = -2;
    while (i < n) {
      if (nextLF !== -1 && nextLF < i) nextLF = chunk.indexOf(LF, i);
      if (nextCR !== -1 && nextCR < i) nextCR = chunk.indexOf(CR, i);
      const lineEnd = nextLF === -1 ? nextCR : nextCR === -1 ? nextLF : Math.min(nextLF, nextCR);
      const stop = lineEnd === -1 ? n : lineEnd;
      if (stop > i) {
        if (lineBytes === 0) {
          const first = chunk[i];
          if (first === LOWERCASE_E || firstLine || (kind === 'undecided' && first === LOWERCASE_D)) head = '';
        }
        if (head !== undefined) {
          const cap = firstLine ? EVENT_LINE_HEAD + BOM.length : EVENT_LINE_HEAD;
          for (let k = i; k < stop && head.length < cap; k++) head += String.fromCharCode(chunk[k] ?? 0);
        }
        lineBytes += stop - i;
      }
      if (lineEnd === -1) break; // the line goes on in the next chunk

      let next = lineEnd + 1;
      if (chunk[lineEnd] === CR) {
        if (next < n) {
          if (chunk[next] === LF) next += 1;
        } else afterCR = true;
      }
      let fieldHead = head;
      let fieldBytes = lineBytes;
      if (firstLine) {
        firstLine = false;
        if (fieldHead?.startsWith(BOM)) {
          fieldHead = fieldHead.slice(BOM.length);
          fieldBytes -= BOM.length;
        }
      }
      if (fieldBytes === 0 && lineBytes > 0) {
        // A line of only the byte order mark: blank to a client, but passed on as it is.
        fieldHead = undefined;
      }
      if (lineBytes === 0) {
        // A blank line: the event is complete.
        if (kind === 'undecided' && hasData) {
          // The first dispatched event decides the stream's kind (see rewriteEndpointEvents).
          kind = isEndpoint ? 'legacy' : 'plain';
          if (kind === 'plain') {
            // The held start of the event, then the rest of the chunk, all as it came.
            out.push(...held);
            if (runStart < n) out.push(chunk.subarray(runStart));
            endEvent();
            return;
          }
        }
        if (isEndpoint) {
          if (afterCR) {
            // Held until the next chunk says whether the blank line ends in CR or CRLF.
            afterCR = false;
            blankCRAtEnd = true;
            break;
          }
          const start = eventStart === -1 ? 0 : eventStart;
          if (start > runStart) out.push(chunk.subarray(runStart, start));
          const terminator = next - lineEnd === 2 ? '\r\n' : chunk[lineEnd] === CR ? '\r' : '\n';
          out.push(await rewriteEvent([...held, chunk.subarray(start, next)], heldBytes + next - start, terminator));
          runStart = next;
        } else {
          // Held parts of the event go first; the rest of it is in this chunk's run.
          out.push(...held);
        }
        endEvent();
        eventStart = next;
      } else if (fieldHead !== undefined && (fieldHead === 'event' || fieldHead.startsWith('event:'))) {
        const value = fieldHead.slice(6);
        isEndpoint = fieldBytes <= 15 && (value === 'endpoint' || value === ' endpoint');
        if (isEndpoint && passthrough) throw new EndpointRefusedError('oversized endpoint event');
      } else if (fieldHead !== undefined && (fieldHead === 'data' || fieldHead.startsWith('data:'))) {
        hasData = true;
      }
      lineBytes = 0;
      head = undefined;
      i = next;
    }

    if (passthrough) {
      if (runStart < n) out.push(chunk.subarray(runStart));
      return;
    }
    const start = eventStart === -1 ? 0 : Math.max(eventStart, runStart);
    if (start > runStart) out.push(chunk.subarray(runStart, start));
    if (start === n) return;
    const rest = chunk.subarray(start);
    if (heldBytes + rest.byteLength <= MAX_HELD_EVENT_BYTES) {
      // A copy: the chunk's buffer is read into again.
      held.push(rest.slice());
      heldBytes += rest.byteLength;
      return;
    }
    if (isEndpoint) throw new EndpointRefusedError('oversized endpoint event');
    out.push(...held, rest);
    held = [];
    heldBytes = 0;
    passthrough = true;
  }

  /** Appends to `out` what is left at the end of the stream. */
  async function finish(out: Uint8Array[]): Promise<void> {
    if (blankCRAtEnd) out.push(await rewriteEvent(held, heldBytes, '\r'));
    // An unterminated last event is never dispatched by a client; pass it on unless it is an endpoint.
    else if (!isEndpoint) out.push(...held);
  }

  return { scan, finish, kind: () => kind };
}

/**
 * Whom a sealed endpoint is for: the person, and the upstream by name, gateway path and origin, so
 * an endpoint announced for one upstream opens nothing on another (even one on the same origin).
 * JSON keeps the parts apart whatever characters they hold.
 */
function binding(upstream: UpstreamConfig, email: string): Uint8Array {
  return encoder.encode(JSON.stringify(['mcp-oauth-gateway legacy-sse endpoint', upstream.name, upstream.path, upstream.url.origin, email.toLowerCase()]));
}

/** HKDF from COOKIE_ENCRYPTION_KEY with a purpose of its own, so the cookie key and this one stay independent. */
function endpointKey(config: Config): Promise<CryptoKey> {
  return derivedKey(config.cookieSecret, HKDF_INFO, { name: 'AES-GCM', length: 256 }, ['encrypt', 'decrypt']);
}

/**
 * The HTTP+SSE transport (MCP 2024-11-05): the client GETs an event stream whose `endpoint` event
 * names the URL to POST messages to. Through the gateway that URL must lead back to the gateway.
 *
 * Design: only an endpoint on the upstream's own origin is accepted. If it lies under UPSTREAM_URL's
 * path it becomes the ordinary `/mcp/<rest>` URL. Often it lies outside (`/sse` announcing
 * `/message?sessionId=…`); mapping arbitrary upstream paths would let any token holder reach any
 * upstream path with the gateway's credential, so instead the path is signed:
 * `/mcp/.endpoint/<base64url(path)>.<base64url(HMAC)>`, the HMAC keyed from COOKIE_ENCRYPTION_KEY
 * (via HKDF, so the cookie key and this one stay independent) over the upstream origin and path.
 * Only paths the upstream itself announced are then reachable; the query (the session id) is the
 * client's, as for any other request. An endpoint on another origin ends the stream: the client
 * must never learn or be sent to another host.
 */
import type { Config } from '../config';
import { gatewayPathFor, GATEWAY_MCP_PATH, SIGNED_ENDPOINT_SEGMENT } from './route';

const encoder = new TextEncoder();
const keys = new WeakMap<Config, Promise<CryptoKey>>();

/** The gateway URL (path and query) to announce for an upstream's `endpoint` event data, or undefined to refuse it. */
export async function gatewayEndpointFor(data: string, upstreamStream: URL, config: Config): Promise<string | undefined> {
  const base = config.upstream.url;
  const announced = URL.canParse(data, upstreamStream.href) ? new URL(data, upstreamStream) : undefined;
  if (!announced || announced.origin !== base.origin) return undefined;
  const mapped = gatewayPathFor(announced, base);
  if (mapped) return mapped;
  const signature = await crypto.subtle.sign('HMAC', await endpointKey(config), signedMessage(base, announced.pathname));
  return `${GATEWAY_MCP_PATH}/${SIGNED_ENDPOINT_SEGMENT}/${base64url(encoder.encode(announced.pathname))}.${base64url(signature)}${announced.search}`;
}

/** The upstream URL a signed endpoint token leads to, or undefined if the token is not one the gateway made. */
export async function upstreamUrlForSignedEndpoint(token: string, search: string, config: Config): Promise<URL | undefined> {
  const base = config.upstream.url;
  const [encodedPath, encodedSignature, ...extra] = token.split('.');
  if (!encodedPath || !encodedSignature || extra.length > 0) return undefined;
  const path = fromBase64url(encodedPath);
  const signature = fromBase64url(encodedSignature);
  if (!path || !signature) return undefined;
  const pathname = new TextDecoder().decode(path);
  // crypto.subtle.verify compares in constant time.
  if (!(await crypto.subtle.verify('HMAC', await endpointKey(config), signature, signedMessage(base, pathname)))) return undefined;
  const target = new URL(`${base.origin}${pathname}${search}`);
  return target.origin === base.origin && target.pathname === pathname ? target : undefined;
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
const LOWERCASE_E = 0x65;
/** `event: endpoint` is 15 bytes; a longer line cannot name the endpoint event. */
const EVENT_LINE_HEAD = 16;

/** Bytes asked of the upstream per read: few reads per MiB, and one buffer, reused, for the whole stream. */
const READ_BUFFER_BYTES = 256 * 1024;

/**
 * Pipes an SSE body through, replacing the data of every `endpoint` event with `rewrite(data)`.
 *
 * How far into the stream endpoint events are looked for: all the way, because an endpoint event
 * passed on unrewritten would hand the client the upstream's host and path. The legacy transport
 * sends it once, first, but nothing makes a server stop there, and a Streamable HTTP GET stream
 * looks the same at the start. Watching the whole stream is affordable (issue #12) because the
 * watching works on bytes (see `endpointEventScanner`) and the bytes move in large pieces: the
 * upstream is read with a BYOB reader into one reused buffer, which hands over whatever has
 * arrived, up to 256 KiB, without waiting for more; the default reader hands over small chunks, and
 * the per-chunk cost of a JavaScript stream in the runtime, not the scanning, is what made the
 * stream slow. The output is an IdentityTransformStream: a write to it resolves once the response
 * has taken the bytes, so the buffer can be read into again, and backpressure reaches the upstream.
 */
export function rewriteEndpointEvents(
  body: ReadableStream<Uint8Array>,
  rewrite: (data: string) => Promise<string | undefined>,
): ReadableStream<Uint8Array> {
  const { readable, writable } = new IdentityTransformStream();
  const writer = writable.getWriter();
  const scanner = endpointEventScanner(rewrite);
  const read = chunkReader(body);

  const pump = async () => {
    try {
      for (let chunk = await read.next(); chunk; chunk = await read.next()) {
        const out: Uint8Array[] = [];
        await scanner.scan(chunk, out);
        // Everything the chunk completed leaves before the next read: no event waits for more bytes.
        for (const part of out) await writer.write(part);
        read.reuse(chunk);
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
 */
function endpointEventScanner(rewrite: (data: string) => Promise<string | undefined>) {
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
        if (lineBytes === 0 && chunk[i] === LOWERCASE_E) head = '';
        if (head !== undefined) {
          for (let k = i; k < stop && head.length < EVENT_LINE_HEAD; k++) head += String.fromCharCode(chunk[k] ?? 0);
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
      if (lineBytes === 0) {
        // A blank line: the event is complete.
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
      } else if (head !== undefined && (head === 'event' || head.startsWith('event:'))) {
        const value = head.slice(6);
        isEndpoint = lineBytes <= 15 && (value === 'endpoint' || value === ' endpoint');
        if (isEndpoint && passthrough) throw new EndpointRefusedError('oversized endpoint event');
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

  return { scan, finish };
}

function signedMessage(base: URL, pathname: string): Uint8Array {
  return encoder.encode(`${base.origin}\n${pathname}`);
}

function endpointKey(config: Config): Promise<CryptoKey> {
  let key = keys.get(config);
  if (!key) {
    key = crypto.subtle
      .importKey('raw', encoder.encode(config.cookieSecret), 'HKDF', false, ['deriveKey'])
      .then((material) =>
        crypto.subtle.deriveKey(
          { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: encoder.encode('mcp-oauth-gateway legacy-sse endpoint v1') },
          material,
          { name: 'HMAC', hash: 'SHA-256', length: 256 },
          false,
          ['sign', 'verify'],
        ),
      );
    keys.set(config, key);
  }
  return key;
}

function base64url(bytes: ArrayBuffer | Uint8Array): string {
  let binary = '';
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64url(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  try {
    const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/**
 * The byte scanner of a legacy HTTP+SSE stream that nothing else rewrites: finds `endpoint` events
 * on bytes and has their data rewritten (pipe.ts runs it over the stream). A stream the gateway
 * also reads event by event gets the same rules from events.ts instead, in the same one pass.
 */

const encoder = new TextEncoder();

/** Thrown inside the stream to end it: the upstream announced an endpoint that cannot be rewritten. */
export class EndpointRefusedError extends Error {
  override readonly name = 'EndpointRefusedError';
}

/** The data to announce for an upstream's `endpoint` event data, or undefined to refuse it (the stream ends). */
export type EndpointRewrite = (data: string) => Promise<string | undefined>;

/**
 * An endpoint event is a short URI; an event this long is passed through rather than held, and if
 * it then turns out to be an endpoint event the stream ends instead of leaking it.
 */
export const MAX_ENDPOINT_EVENT_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const LOWERCASE_D = 0x64;
const LOWERCASE_E = 0x65;
/** `event: endpoint` is 15 bytes; a longer line cannot name the endpoint event. */
const EVENT_LINE_HEAD = 16;
/** The UTF-8 byte order mark a stream may start with, which an SSE client drops, as `head` holds it. */
const BOM = '\xef\xbb\xbf';

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
export function endpointEventScanner(rewrite: EndpointRewrite) {
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
    if (size > MAX_ENDPOINT_EVENT_BYTES) throw new EndpointRefusedError('oversized endpoint event');
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
    if (heldBytes + rest.byteLength <= MAX_ENDPOINT_EVENT_BYTES) {
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

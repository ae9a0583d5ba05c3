/**
 * The event-by-event SSE transform, for streams the gateway reads as it passes them (the tool
 * policy's list filter, the gateway's own MCP client): every event passes through in order, except
 * one whose data is a JSON-RPC message `rewrite` replaces, and, on a legacy HTTP+SSE stream, its
 * `endpoint` events, whose data `endpoint` replaces. One parse serves both (issue #17). Each event
 * is held only until its blank line, which is when a client would dispatch it anyway, so nothing is
 * delayed; memory is bounded by one event.
 */
import { parseExactJson } from '../exact-json';
import { EndpointRefusedError, type EndpointRewrite, MAX_ENDPOINT_EVENT_BYTES } from './scanner';

/** Longer than any tools list we expect; an event past it ends the stream (it might be a list). */
export const MAX_HELD_EVENT_CHARS = 8 * 1024 * 1024;

export class UncheckableEventError extends Error {
  override readonly name = 'UncheckableEventError';
}

export interface EventRewriteOptions {
  /** Already-framed events (e.g. the gateway's answers to refused calls of a batch), sent first. */
  prefix?: string;
  maxEventChars?: number;
  /** Skips events cheaply by their data's text. */
  worthParsing?: (data: string) => boolean;
  /**
   * The data to announce for a legacy `endpoint` event, under the byte scanner's rules
   * (scanner.ts): the first dispatched event decides whether the stream is a legacy one; on one,
   * every endpoint event is rewritten, and one refused (undefined) or over 64 KiB ends the stream.
   */
  endpoint?: EndpointRewrite;
}

interface Line {
  raw: string;
  field: string;
  value: string;
}

const encoder = new TextEncoder();

/**
 * `rewrite` gets each event's parsed data and returns the message to send instead, or undefined to
 * pass the event unchanged.
 */
export function rewriteJsonRpcEvents(
  body: ReadableStream<Uint8Array>,
  rewrite: (message: unknown) => unknown,
  options: EventRewriteOptions = {},
): ReadableStream<Uint8Array> {
  const max = options.maxEventChars ?? MAX_HELD_EVENT_CHARS;
  // A byte order mark at the stream's start is dropped here, as a client drops it: it cannot hide the first event.
  const decoder = new TextDecoder();
  let pending = ''; // text after the last complete line
  let held: Line[] = [];
  let heldChars = 0;
  // Without an endpoint hook no stream is a legacy one to rewrite.
  let kind: 'undecided' | 'legacy' | 'plain' = options.endpoint ? 'undecided' : 'plain';

  const endEvent = async (terminator: string): Promise<string> => {
    const lines = held;
    held = [];
    heldChars = 0;
    const raw = lines.map((l) => l.raw).join('') + terminator;
    const data = lines.flatMap((l) => (l.field === 'data' ? [l.value] : []));
    // The event type is the last `event` field's value (WHATWG HTML §9.2.6).
    const type = lines.findLast((l) => l.field === 'event')?.value;
    if (kind === 'undecided' && data.length > 0) kind = type === 'endpoint' ? 'legacy' : 'plain';
    if (kind === 'legacy' && type === 'endpoint' && options.endpoint) {
      if (encoder.encode(raw).byteLength > MAX_ENDPOINT_EVENT_BYTES) throw new EndpointRefusedError('oversized endpoint event');
      const announced = await options.endpoint(data.join('\n').trim());
      if (announced === undefined) throw new EndpointRefusedError('upstream announced an endpoint outside its origin');
      return withData(lines, announced, terminator);
    }
    const text = data.join('\n');
    if (!/^\s*[[{]/.test(text) || (options.worthParsing && !options.worthParsing(text))) return raw;
    let message: unknown;
    try {
      // Exactly: a rewritten list keeps every number of its schemas as the upstream wrote it.
      message = parseExactJson(text);
    } catch {
      return raw;
    }
    const replaced = rewrite(message);
    return replaced === undefined ? raw : withData(lines, JSON.stringify(replaced), terminator);
  };

  async function drain(final: boolean): Promise<string> {
    let out = '';
    // SSE lines end with CRLF, LF or CR (WHATWG HTML §9.2.5); a lone CR at the end may be half a
    // CRLF, unless the stream ends there.
    const eol = final ? /\r\n|\r|\n/g : /\r\n|\r(?!$)|\n/g;
    let start = 0;
    for (let match = eol.exec(pending); match; match = eol.exec(pending)) {
      const text = pending.slice(start, match.index);
      const raw = pending.slice(start, match.index + match[0].length);
      start = match.index + match[0].length;
      if (text === '') {
        out += await endEvent(raw);
        continue;
      }
      const colon = text.indexOf(':');
      const field = colon === -1 ? text : text.slice(0, colon);
      let value = colon === -1 ? '' : text.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      held.push({ raw, field, value });
      heldChars += raw.length;
      if (heldChars > max) throw new UncheckableEventError('an event too large to check against the tool policy');
    }
    pending = pending.slice(start);
    if (pending.length + heldChars > max) throw new UncheckableEventError('an event too large to check against the tool policy');
    if (final) {
      // An unterminated last event is never dispatched by a client: it cannot carry a list. On a
      // legacy stream it might be an endpoint, which is never passed on unrewritten.
      const isEndpoint = kind === 'legacy' && held.findLast((l) => l.field === 'event')?.value === 'endpoint';
      if (!isEndpoint) out += held.map((l) => l.raw).join('') + pending;
      held = [];
      pending = '';
    }
    return out;
  }

  let prefix = options.prefix ?? '';
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      start(controller) {
        if (prefix) controller.enqueue(encoder.encode(prefix));
        prefix = '';
      },
      async transform(chunk, controller) {
        pending += decoder.decode(chunk, { stream: true });
        const out = await drain(false);
        if (out) controller.enqueue(encoder.encode(out));
      },
      async flush(controller) {
        pending += decoder.decode();
        const out = await drain(true);
        if (out) controller.enqueue(encoder.encode(out));
      },
    }),
  );
}

/** One SSE event carrying a JSON-RPC message. */
export function sseEvent(message: unknown): string {
  return `event: message\ndata: ${JSON.stringify(message)}\n\n`;
}

/** The event's other fields (event, id, retry) kept; its data becomes one line, ended like the event. */
function withData(lines: Line[], data: string, terminator: string): string {
  const fields = lines
    .filter((l) => l.field !== 'data')
    .map((l) => l.raw)
    .join('');
  return `${fields}data: ${data}${terminator}${terminator}`;
}

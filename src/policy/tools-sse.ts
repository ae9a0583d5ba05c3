/**
 * The one SSE transform of the tool policy: every event passes through byte for byte, in order,
 * except one whose data is a JSON-RPC message `rewrite` replaces (a `tools/list` answer). Each
 * event is held only until its blank line, which is when a client would dispatch it anyway, so
 * nothing is delayed; memory is bounded by one event.
 */
import { parseExactJson } from '../lib/exact-json';

/** Longer than any tools list we expect; an event past it ends the stream (it might be a list). */
export const MAX_HELD_EVENT_CHARS = 8 * 1024 * 1024;

export class UncheckableEventError extends Error {
  override readonly name = 'UncheckableEventError';
}

/**
 * `rewrite` gets each event's parsed data and returns the message to send instead, or undefined to
 * pass the event unchanged. `prefix` (already-framed events, e.g. the gateway's answers to refused
 * calls of a batch) goes out first. `worthParsing` can skip events cheaply by their data's text.
 */
export function rewriteJsonRpcEvents(
  body: ReadableStream<Uint8Array>,
  rewrite: (message: unknown) => unknown,
  options: { prefix?: string; maxEventChars?: number; worthParsing?: (data: string) => boolean } = {},
): ReadableStream<Uint8Array> {
  const max = options.maxEventChars ?? MAX_HELD_EVENT_CHARS;
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let pending = ''; // text after the last complete line
  let held: Array<{ raw: string; data: string | undefined }> = [];
  let heldChars = 0;

  const endEvent = (terminator: string): string => {
    const lines = held;
    held = [];
    heldChars = 0;
    const raw = lines.map((l) => l.raw).join('') + terminator;
    const data = lines.flatMap((l) => (l.data === undefined ? [] : [l.data]));
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
    if (replaced === undefined) return raw;
    // The event's other fields (event, id, retry) stay; its data becomes one line, ended like the event.
    const fields = lines
      .filter((l) => l.data === undefined)
      .map((l) => l.raw)
      .join('');
    return `${fields}data: ${JSON.stringify(replaced)}${terminator}${terminator}`;
  };

  function drain(final: boolean): string {
    let out = '';
    // SSE lines end with CRLF, LF or CR (WHATWG HTML §9.2.5); a lone CR at the end may be half a CRLF.
    const eol = /\r\n|\r(?!$)|\n/g;
    let start = 0;
    for (let match = eol.exec(pending); match; match = eol.exec(pending)) {
      const text = pending.slice(start, match.index);
      const raw = pending.slice(start, match.index + match[0].length);
      start = match.index + match[0].length;
      if (text === '') {
        out += endEvent(raw);
        continue;
      }
      const colon = text.indexOf(':');
      const field = colon === -1 ? text : text.slice(0, colon);
      let value = colon === -1 ? '' : text.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      held.push({ raw, data: field === 'data' ? value : undefined });
      heldChars += raw.length;
      if (heldChars > max) throw new UncheckableEventError('an event too large to check against the tool policy');
    }
    pending = pending.slice(start);
    if (pending.length + heldChars > max) throw new UncheckableEventError('an event too large to check against the tool policy');
    if (final) {
      // An unterminated last event is never dispatched by a client: it cannot carry a list.
      out += held.map((l) => l.raw).join('') + pending;
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
      transform(chunk, controller) {
        pending += decoder.decode(chunk, { stream: true });
        const out = drain(false);
        if (out) controller.enqueue(encoder.encode(out));
      },
      flush(controller) {
        pending += decoder.decode();
        const out = drain(true);
        if (out) controller.enqueue(encoder.encode(out));
      },
    }),
  );
}

/** One SSE event carrying a JSON-RPC message. */
export function sseEvent(message: unknown): string {
  return `event: message\ndata: ${JSON.stringify(message)}\n\n`;
}

/**
 * The request body: read once, judged once, and what goes upstream is what was judged. A POST that
 * declares JSON is read whole (up to MESSAGE_LIMIT_BYTES, with or without Content-Length), must be
 * UTF-8 JSON-RPC, and is forwarded as the gateway's own serialization of the value it parsed: no
 * duplicate key, charset or encoding trick can make the upstream read another message than the
 * one the tool policy, the rate limit and the log line saw. Anything else streams through unread,
 * unless a policy or a limit must know what it holds.
 */
import type { AuditArguments } from '../config';
import { parseExactJson } from '../lib';
import { jsonCharset } from './json-content-type';
import type { JsonRpcId, ProxyErrorKind } from './jsonrpc-error';
import { checkJsonRpcBody, type MessageSummary } from './jsonrpc-message';
import type { ProxyOutcome } from './log';
import { headerRefusal } from './mcp-headers';

/** The largest body read; MCP requests stay far below it. A larger one streams through unread, or is refused. */
export const MESSAGE_LIMIT_BYTES = 1024 * 1024;

export type RequestBody =
  /** Nothing goes upstream as a body. */
  | { kind: 'none' }
  /** Not read: not declared JSON, or over the limit. */
  | { kind: 'unread'; body: ReadableStream<Uint8Array> }
  /** `body` is the UTF-8 serialization of `message`, exactly what was checked. */
  | { kind: 'message'; message: unknown; body: ArrayBuffer; summary: MessageSummary }
  /** Answered with this error; nothing goes upstream. `summary` (and `message`, once parsed) name what it held, for the log. */
  | { kind: 'refused'; error: ProxyErrorKind; id: JsonRpcId; summary?: MessageSummary; message?: unknown };

export interface ReadOptions {
  /**
   * A tool policy or rate limit needs every request's content: a body it cannot read is refused,
   * and GET and DELETE (which carry no JSON-RPC) send none upstream.
   */
  inspect?: boolean;
  /** The upstream's `audit.arguments`: what the summary keeps of the calls' arguments for the trail. */
  auditArguments?: AuditArguments;
}

const encoder = new TextEncoder();
// `fatal`: bytes that are not UTF-8 (a UTF-16 byte order mark among them) are refused, not replaced;
// a UTF-8 byte order mark is dropped, as RFC 8259 §8.1 lets a parser do. Reusable: no `stream`.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

export async function readRequestBody(request: Request, options: ReadOptions = {}): Promise<RequestBody> {
  const inspect = options.inspect === true;
  const stream = request.body;
  if (stream === null) return { kind: 'none' };
  const refuse = (error: ProxyErrorKind): RequestBody => {
    stream.cancel().catch(() => {});
    return { kind: 'refused', error, id: null };
  };
  const unreadable = (body: ReadableStream<Uint8Array>): RequestBody => (inspect ? refuse('uninspectable') : { kind: 'unread', body });

  if (request.method !== 'POST') {
    if (!inspect) return { kind: 'unread', body: stream };
    stream.cancel().catch(() => {});
    return { kind: 'none' };
  }
  const charset = jsonCharset(request.headers.get('content-type'));
  if (charset === undefined) return unreadable(stream);
  if (charset === 'other') return refuse('notUtf8Charset');
  // Content-Length of an incoming request is enforced by the runtime, so it bounds the read.
  const length = request.headers.get('content-length');
  if (Number(length ?? 0) > MESSAGE_LIMIT_BYTES) return unreadable(stream);

  let read: Read;
  try {
    read = length !== null ? { kind: 'whole', bytes: new Uint8Array(await request.arrayBuffer()) } : await readAtMost(stream, MESSAGE_LIMIT_BYTES);
  } catch {
    // The client went away or broke the framing mid-body: its mistake, never a 500.
    return { kind: 'refused', error: 'bodyNotRead', id: null };
  }
  if (read.kind === 'over') return inspect ? refuse('uninspectable') : { kind: 'unread', body: read.body };
  let text: string;
  try {
    text = decoder.decode(read.bytes);
  } catch {
    return { kind: 'refused', error: 'notUtf8', id: null };
  }
  let message: unknown;
  try {
    message = parseExactJson(text);
  } catch {
    return { kind: 'refused', error: 'parseError', id: null };
  }
  const check = checkJsonRpcBody(message, { auditArguments: options.auditArguments ?? 'none' });
  if (!check.ok) return { kind: 'refused', error: check.error, id: check.summary.id, summary: check.summary, message };
  // Right after the parse, so the headers are checked against exactly the message judged.
  const mismatch = headerRefusal(request.headers, message);
  if (mismatch) return { kind: 'refused', error: mismatch, id: check.summary.id, summary: check.summary, message };
  return { kind: 'message', message, body: encoder.encode(JSON.stringify(message)).buffer as ArrayBuffer, summary: check.summary };
}

/**
 * The body to send upstream for `read`, with the Content-Type that describes it: the gateway's
 * serialization is plain `application/json` (no client charset or parameter travels), and no body
 * means no Content-Type.
 */
export function bodyForUpstream(read: RequestBody, headers: Headers): ArrayBuffer | ReadableStream<Uint8Array> | null {
  if (read.kind === 'message') headers.set('Content-Type', 'application/json');
  if (read.kind === 'none') headers.delete('Content-Type');
  return read.kind === 'message' || read.kind === 'unread' ? read.body : null;
}

/** The log's outcome for a refused body. */
export function refusalOutcome(error: ProxyErrorKind): ProxyOutcome {
  if (error === 'headerMismatch') return 'header_mismatch';
  return error === 'uninspectable' ? 'uninspectable' : 'invalid_message';
}

type Read = { kind: 'whole'; bytes: Uint8Array } | { kind: 'over'; body: ReadableStream<Uint8Array> };

/**
 * The whole stream when it holds at most `limit` bytes; otherwise a stream that replays what was
 * read and then the rest, so a body too large to judge can still pass unread where that is allowed.
 */
async function readAtMost(stream: ReadableStream<Uint8Array>, limit: number): Promise<Read> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.byteLength;
    if (total > limit) return { kind: 'over', body: replay(chunks, reader) };
  }
  if (chunks.length === 1 && chunks[0]) return { kind: 'whole', bytes: chunks[0] };
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { kind: 'whole', bytes };
}

function replay(chunks: Uint8Array[], reader: ReadableStreamDefaultReader<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = chunks.shift();
      if (chunk) return controller.enqueue(chunk);
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

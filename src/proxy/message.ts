/**
 * The request body to send upstream, and what the log may say about it. A small JSON body is read
 * once into a buffer that is then sent as is (no second copy); anything else, including a body of
 * unknown length, streams through unread.
 */
import type { JsonRpcId } from './jsonrpc-error';

/** Bodies up to this size are parsed for the log line; MCP requests are almost always far smaller. */
export const PEEK_LIMIT_BYTES = 64 * 1024;
const MAX_LOGGED_METHODS = 10;

export interface RequestBody {
  body: ReadableStream<Uint8Array> | ArrayBuffer | null;
  /** The JSON-RPC method(s), for the log: comma-separated for a batch. */
  rpcMethod: string | undefined;
  /** The id of a single request, echoed in the proxy's own errors. */
  id: JsonRpcId;
  /** The parsed JSON-RPC message (or batch); undefined when the body was not read or not JSON. */
  message?: unknown;
}

export interface ReadOptions {
  /** The largest body parsed (a tool policy must read more than the log line needs). */
  limit?: number;
  /**
   * Also read a JSON body of unknown length (HTTP/2 may omit Content-Length), up to `limit`; one
   * that turns out longer is consumed and comes back unparsed, so only a caller that refuses such
   * a body (a tool policy) may ask for this.
   */
  readUnknownLength?: boolean;
}

export async function readRequestBody(request: Request, options: ReadOptions = {}): Promise<RequestBody> {
  const limit = options.limit ?? PEEK_LIMIT_BYTES;
  if (request.body === null) return { body: null, rpcMethod: undefined, id: null };
  // Content-Length of an incoming request is enforced by the runtime, so it bounds the read.
  const header = request.headers.get('content-length');
  const length = Number(header ?? Number.NaN);
  const json = /^application\/json\s*(;|$)/i.test(request.headers.get('content-type') ?? '');
  const unknownLength = header === null && options.readUnknownLength === true;
  if (!json || !(unknownLength || (length > 0 && length <= limit))) return { body: request.body, rpcMethod: undefined, id: null };

  const bytes = unknownLength ? await readAtMost(request.body, limit) : await request.arrayBuffer();
  if (bytes === undefined) return { body: null, rpcMethod: undefined, id: null };
  let message: unknown;
  try {
    message = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    // Not JSON after all: the upstream gets it unchanged and answers as it sees fit.
    return { body: bytes, rpcMethod: undefined, id: null };
  }
  if (Array.isArray(message)) {
    const methods = message
      .slice(0, MAX_LOGGED_METHODS)
      .map(methodOf)
      .filter((m): m is string => m !== undefined);
    return { body: bytes, rpcMethod: methods.length > 0 ? methods.join(',') : undefined, id: null, message };
  }
  return { body: bytes, rpcMethod: methodOf(message), id: idOf(message), message };
}

/** The whole stream, or undefined (and the stream cancelled) once it passes `limit` bytes. */
async function readAtMost(stream: ReadableStream<Uint8Array>, limit: number): Promise<ArrayBuffer | undefined> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes.buffer;
}

/** A method name is client-chosen: keep it short and printable so it cannot forge log content. */
function methodOf(message: unknown): string | undefined {
  if (typeof message !== 'object' || message === null || !('method' in message)) return undefined;
  const { method } = message;
  return typeof method === 'string' && /^[\w./:-]{1,100}$/.test(method) ? method : undefined;
}

function idOf(message: unknown): JsonRpcId {
  if (typeof message !== 'object' || message === null || !('id' in message)) return null;
  const { id } = message;
  return (typeof id === 'string' && id.length <= 200) || (typeof id === 'number' && Number.isFinite(id)) ? id : null;
}

/**
 * MCP 2026-07-28's request headers against the body the gateway parsed (src/proxy/message.ts):
 * `MCP-Protocol-Version` names the body's `_meta` protocol version, `Mcp-Method` its `method`, and
 * `Mcp-Name` its `params.name`, `params.uri` or `params.taskId`. Intermediaries may route, limit or
 * log by those headers while the gateway judges the body, so a request whose headers say one thing
 * and whose body another goes nowhere. Rules as the v2 TypeScript SDK's server applies them
 * (`validateStandardRequestHeaders`); older revisions have no such headers, but one that is sent
 * must still be true.
 */
import type { ProxyErrorKind } from './jsonrpc-error';

/** The first revision with per-request `_meta` and these headers; later ones sort after it. */
const FIRST_STATELESS_REVISION = '2026-07-28';
/** The `_meta` key that names a 2026-07-28 request's revision. */
const PROTOCOL_VERSION_META = 'io.modelcontextprotocol/protocolVersion';
/** Which body field `Mcp-Name` mirrors, per method (tasks/* from the tasks extension's HTTP binding). */
const NAME_SOURCE: Readonly<Record<string, string>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};
const SENTINEL_PREFIX = '=?base64?';
const SENTINEL_SUFFIX = '?=';
const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * The refusal for a body (one message or a batch) whose headers disagree with it, or that names
 * 2026-07-28 without the headers that revision requires; undefined when they agree.
 */
export function headerRefusal(headers: Headers, body: unknown): ProxyErrorKind | undefined {
  const method = headers.get('mcp-method');
  const name = headers.get('mcp-name');
  const version = headers.get('mcp-protocol-version');
  if (Array.isArray(body)) {
    // 2026-07-28 has no batches (the SDK's servers refuse one holding such a message), and the
    // headers mirror one message: on a batch they cannot be true.
    if (body.some((message) => claimOf(message) !== undefined)) return 'statelessBatch';
    return method !== null || name !== null ? 'headerMismatch' : undefined;
  }
  if (!isObject(body)) return undefined;
  const claim = claimOf(body);
  // A claim that is not a string agrees with no header.
  if (claim !== undefined && version !== null && version !== claim) return 'headerMismatch';
  if (method !== null && method !== body.method) return 'headerMismatch';

  const source = typeof body.method === 'string' && Object.hasOwn(NAME_SOURCE, body.method) ? NAME_SOURCE[body.method] : undefined;
  const value = source && isObject(body.params) ? body.params[source] : undefined;
  if (name !== null && source !== undefined && (typeof value !== 'string' || decodeName(name) !== value)) return 'headerMismatch';

  // Presence: every 2026-07-28 request (not a notification) carries MCP-Protocol-Version and
  // Mcp-Method, and Mcp-Name where its body has the value to mirror.
  const stateless = isStateless(claim) || isStateless(version ?? undefined);
  if (!stateless || !isRequest(body)) return undefined;
  return version === null || method === null || (name === null && typeof value === 'string') ? 'headerMismatch' : undefined;
}

/**
 * The protocol revision a request names, for the log line: its `_meta` claim, else its
 * `MCP-Protocol-Version` header, else what an `initialize` asks for. A value that is not a date
 * (`YYYY-MM-DD`) is logged as `?`: a client chose it.
 */
export function protocolRevisionOf(headers: Headers, body?: unknown): string | undefined {
  const single = isObject(body) ? body : undefined;
  const params = single && isObject(single.params) ? single.params : undefined;
  const requested = single?.method === 'initialize' ? params?.protocolVersion : undefined;
  const named = claimOf(single) ?? headers.get('mcp-protocol-version') ?? requested;
  if (named === undefined) return undefined;
  return typeof named === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(named) ? named : '?';
}

/** The body's `_meta` protocol version claim (any JSON value), or undefined when it makes none. */
function claimOf(message: unknown): unknown {
  if (!isObject(message) || !isObject(message.params) || !isObject(message.params._meta)) return undefined;
  const meta = message.params._meta;
  return Object.hasOwn(meta, PROTOCOL_VERSION_META) ? meta[PROTOCOL_VERSION_META] : undefined;
}

/** Whether a claim or header names 2026-07-28 or later; a claim that is not a string counts, to fail closed. */
function isStateless(version: unknown): boolean {
  if (version === undefined) return false;
  return typeof version !== 'string' || version >= FIRST_STATELESS_REVISION;
}

function isRequest(message: Record<string, unknown>): boolean {
  return typeof message.method === 'string' && message.id !== undefined;
}

/** An `Mcp-Name` value as the client meant it: `=?base64?…?=` decoded (canonical base64 of UTF-8 only). */
function decodeName(value: string): string | undefined {
  if (!(value.startsWith(SENTINEL_PREFIX) && value.endsWith(SENTINEL_SUFFIX))) return value;
  const encoded = value.slice(SENTINEL_PREFIX.length, value.length - SENTINEL_SUFFIX.length);
  if (!CANONICAL_BASE64.test(encoded)) return undefined;
  try {
    return utf8.decode(Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

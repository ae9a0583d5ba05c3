/**
 * The gateway's own MCP client for its upstreams: every request the gateway itself sends (the tool
 * policy's list fetch, the token check, the doctor) goes through `sendRequest`, under the rules of
 * the proxy's own fetch (fetch.ts): a bounded wait, never a followed redirect. What a newer MCP
 * revision asks of each request (headers naming the method, a `_meta` envelope) belongs in
 * `sendRequest`; how to open a conversation, in `probeUpstream`.
 *
 * Plain TypeScript with no Workers-only import: the doctor (scripts/lib/doctor.mjs) loads it in Node.
 */
import type { UpstreamConfig } from '../config';
import { idKey, rewriteJsonRpcEvents } from '../lib';
import { authHeaderFor } from './credentials';
import { forwardToUpstream, type UpstreamResult } from './fetch';

/** Where and how the gateway sends its own requests to one upstream. */
export interface UpstreamLink {
  url: URL;
  /** UPSTREAM_HEADERS and the credential; a client's session too when the request rides on it. */
  headers: Headers;
  /** How long to wait for each answer's headers. */
  timeoutMs: number;
  /** Ends every request on the link: the client going away, or an overall deadline. */
  signal?: AbortSignal;
}

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: string | number;
  method: string;
  params?: Record<string, unknown>;
}

export type CallResult =
  | Exclude<UpstreamResult, { outcome: 'response' }>
  /** `answer`: the JSON-RPC answer with the request's id, from a JSON or SSE body; undefined when there is none. */
  | { outcome: 'response'; response: Response; answer: Record<string, unknown> | undefined };

/** What the token check makes of an upstream's answer to `initialize` with a token. */
export type TokenCheck = 'accepted' | 'refused' | 'unavailable';

export const PROTOCOL_VERSION = '2025-06-18';
const CHECK_TIMEOUT_MS = 10_000;
/** Bounds `listUpstream`: pages followed, and bytes read per JSON page (an SSE event is bounded by the SSE reader). */
const MAX_LIST_PAGES = 50;
const MAX_LIST_BYTES = 8 * 1024 * 1024;

/** A link with the upstream's fixed headers (UPSTREAM_HEADERS) and this credential header. */
export function linkFor(upstream: UpstreamConfig, credential: readonly [string, string] | undefined, timeoutMs = upstream.timeoutMs): UpstreamLink {
  const headers = new Headers(upstream.headers as Array<[string, string]>);
  if (credential) headers.set(...credential);
  return { url: upstream.url, headers, timeoutMs };
}

/** One JSON-RPC message POSTed to the upstream, as JSON, asking for a JSON or SSE answer. */
export function sendRequest(link: UpstreamLink, message: JsonRpcRequest | { jsonrpc: '2.0'; method: string }): Promise<UpstreamResult> {
  const headers = new Headers(link.headers);
  headers.set('Content-Type', 'application/json');
  headers.set('Accept', 'application/json, text/event-stream');
  headers.delete('Last-Event-ID');
  // Newer revisions name the method (and tool) in headers, which servers may check against the body.
  headers.delete('Mcp-Name');
  if (headers.has('Mcp-Method')) headers.set('Mcp-Method', message.method);
  return forwardToUpstream(link.url, { method: 'POST', headers, body: JSON.stringify(message), signal: link.signal, timeoutMs: link.timeoutMs });
}

/** A request and its answer; `maxBytes` bounds a JSON body (longer: no answer). */
export async function callUpstream(link: UpstreamLink, request: JsonRpcRequest, maxBytes = MAX_LIST_BYTES): Promise<CallResult> {
  const result = await sendRequest(link, request);
  if (result.outcome !== 'response') return result;
  let answer: Record<string, unknown> | undefined;
  try {
    answer = await answerIn(result.response, request.id, maxBytes);
  } catch {
    // A body cut short, not JSON, or an event too large to read: no answer.
  }
  return { outcome: 'response', response: result.response, answer };
}

/**
 * Every item of a paged list (`tools/list` -> `tools`), following `nextCursor` for at most 50
 * pages; undefined when any page cannot be had, so a partial list is never taken for the whole.
 */
export async function listUpstream(link: UpstreamLink, method: string, field: string): Promise<unknown[] | undefined> {
  const items: unknown[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const id = `mcp-oauth-gateway-${field}-${crypto.randomUUID()}`;
    const called = await callUpstream(link, { jsonrpc: '2.0', id, method, params: cursor === undefined ? {} : { cursor } });
    const result = called.outcome === 'response' && isObject(called.answer?.result) ? called.answer.result : undefined;
    const list = result?.[field];
    if (!result || !Array.isArray(list)) return undefined;
    items.push(...list);
    if (typeof result.nextCursor !== 'string') return items;
    cursor = result.nextCursor;
  }
  return undefined;
}

/**
 * Whether an upstream accepts a token, asked the way an MCP client would: an `initialize` with it.
 * Used before a person's own token is stored, so a mistyped or under-scoped token is caught on the
 * page where it was pasted rather than on the first tool call.
 */
export async function probeUpstream(upstream: UpstreamConfig, token: string, ctx?: ExecutionContext): Promise<TokenCheck> {
  const link = linkFor(upstream, authHeaderFor(upstream, token), Math.min(upstream.timeoutMs, CHECK_TIMEOUT_MS));
  const result = await sendRequest(link, {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'mcp-oauth-gateway token check', version: '1' } },
  });
  if (result.outcome !== 'response') return 'unavailable';
  const { response } = result;
  await response.body?.cancel().catch(() => {});
  if (response.status === 401 || response.status === 403) return 'refused';
  if (!response.ok) return 'unavailable';
  // Leave no session behind on a stateful server (DELETE may be refused with 405: that is fine).
  const session = response.headers.get('Mcp-Session-Id');
  if (session) {
    const end = endSession({ ...link, timeoutMs: CHECK_TIMEOUT_MS }, session, PROTOCOL_VERSION);
    ctx?.waitUntil(end);
  }
  return 'accepted';
}

/** Ends a session the gateway opened (a DELETE; a 405 is fine), never failing. */
export async function endSession(link: UpstreamLink, session: string, protocolVersion: string): Promise<void> {
  const headers = new Headers(link.headers);
  headers.set('Content-Type', 'application/json');
  headers.set('Accept', 'application/json, text/event-stream');
  headers.set('Mcp-Session-Id', session);
  headers.set('Mcp-Protocol-Version', protocolVersion);
  const result = await forwardToUpstream(link.url, { method: 'DELETE', headers, body: null, signal: link.signal, timeoutMs: link.timeoutMs });
  if (result.outcome === 'response') await result.response.body?.cancel().catch(() => {});
}

/** The answer with this id, from a JSON (single or batch) or SSE response; undefined otherwise. */
async function answerIn(response: Response, id: string | number, maxBytes: number): Promise<Record<string, unknown> | undefined> {
  const type = response.headers.get('Content-Type') ?? '';
  if (!response.ok || !response.body) {
    response.body?.cancel().catch(() => {});
    return undefined;
  }
  const key = idKey(id);
  const answerOf = (message: unknown) => (isObject(message) && idKey(message.id) === key ? message : undefined);
  if (/^application\/json\s*(;|$)/i.test(type)) {
    const text = await response.text();
    if (text.length > maxBytes) return undefined;
    const json: unknown = JSON.parse(text);
    return Array.isArray(json) ? json.map(answerOf).find((m) => m !== undefined) : answerOf(json);
  }
  if (!/^text\/event-stream\s*(;|$)/i.test(type)) {
    response.body.cancel().catch(() => {});
    return undefined;
  }
  // Read events until the one answering `id`; other messages on this stream are not ours to act on.
  let found: Record<string, unknown> | undefined;
  const reader = rewriteJsonRpcEvents(response.body, (message) => {
    found ??= answerOf(message);
    return undefined;
  }).getReader();
  try {
    while (!found) {
      const { done } = await reader.read();
      if (done) break;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return found;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

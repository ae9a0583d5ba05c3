/**
 * The gateway's own MCP client for its upstreams: every request the gateway itself sends (the tool
 * policy's list fetch, the token check, the doctor) goes through `sendRequest`, under the rules of
 * the proxy's own fetch (fetch.ts): a bounded wait, never a followed redirect. A request speaks
 * the revision its link's `MCP-Protocol-Version` names (revision.ts): 2026-07-28 gets the `_meta`
 * envelope and the `Mcp-Method` / `Mcp-Name` headers. `openConversation` picks the revision for a
 * link that has none: `server/discover` first, `initialize` for servers that do not know it.
 *
 * Plain TypeScript with no Workers-only import: the doctor (scripts/lib/doctor.mjs) loads it in Node.
 */
import type { UpstreamConfig } from '../config';
import { idKey, rewriteJsonRpcEvents } from '../lib';
import { forwardToUpstream, type UpstreamResult } from './fetch';
import {
  CLIENT_INFO,
  discoverVerdict,
  forgetRevision,
  isModernRevision,
  knownRevision,
  LEGACY_PROTOCOL_VERSION,
  MODERN_PROTOCOL_VERSION,
  mcpNameHeader,
  rememberRevision,
  requestEnvelope,
} from './revision';

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
  /** `answer`: the JSON-RPC answer with the request's id, from a JSON (any status) or SSE body; undefined when there is none. */
  | { outcome: 'response'; response: Response; answer: Record<string, unknown> | undefined };

/**
 * A conversation the gateway opened: `link` carries the revision (and a 2025 session) for the
 * requests that follow; `end` leaves no session behind. Or why none could be opened: the
 * credential was refused (401/403), or `method` got no usable answer (`called` says how).
 */
export type Conversation =
  | { outcome: 'open'; revision: string; link: UpstreamLink; server: Record<string, unknown>; end: () => Promise<void> }
  | { outcome: 'refused'; status: number }
  | { outcome: 'failed'; method: 'server/discover' | 'initialize'; called: CallResult };

/** Bounds the token check's requests, and a DELETE ending a session. */
export const CHECK_TIMEOUT_MS = 10_000;
/** Bounds `listUpstream`: pages followed, and bytes read per JSON page (an SSE event is bounded by the SSE reader). */
const MAX_LIST_PAGES = 50;
const MAX_LIST_BYTES = 8 * 1024 * 1024;
export const MAX_OPENING_BYTES = 1024 * 1024;

/** A link with the upstream's fixed headers (UPSTREAM_HEADERS) and this credential header. */
export function linkFor(upstream: UpstreamConfig, credential: readonly [string, string] | undefined, timeoutMs = upstream.timeoutMs): UpstreamLink {
  const headers = new Headers(upstream.headers as Array<[string, string]>);
  if (credential) headers.set(...credential);
  return { url: upstream.url, headers, timeoutMs };
}

/**
 * One JSON-RPC message POSTed to the upstream, as JSON, asking for a JSON or SSE answer, in the
 * revision the link's `MCP-Protocol-Version` names (none: a 2025-era request, as before it).
 */
export function sendRequest(
  link: UpstreamLink,
  message: JsonRpcRequest | { jsonrpc: '2.0'; method: string; params?: Record<string, unknown> },
): Promise<UpstreamResult> {
  const headers = new Headers(link.headers);
  headers.set('Content-Type', 'application/json');
  headers.set('Accept', 'application/json, text/event-stream');
  headers.delete('Last-Event-ID');
  // A client's request may lend its headers: those naming its method, tool or arguments are not ours.
  const mirrored = [...headers.keys()].filter((name) => /^mcp-(method|name|param-.*)$/i.test(name));
  for (const name of mirrored) headers.delete(name);
  let body: object = message;
  const version = headers.get('MCP-Protocol-Version');
  if (isModernRevision(version)) {
    // 2026-07-28: no sessions; the envelope and the headers mirroring the body on every request.
    headers.delete('Mcp-Session-Id');
    headers.set('Mcp-Method', message.method);
    const name = mcpNameHeader(message.method, message.params);
    if (name !== undefined) headers.set('Mcp-Name', name);
    const meta = isObject(message.params?._meta) ? message.params._meta : {};
    body = { ...message, params: { ...message.params, _meta: { ...meta, ...requestEnvelope(version) } } };
  }
  return forwardToUpstream(link.url, { method: 'POST', headers, body: JSON.stringify(body), signal: link.signal, timeoutMs: link.timeoutMs });
}

/**
 * A request and its answer; `maxBytes` bounds a JSON body (longer: no answer). `onMessage` sees
 * every other message of an SSE answer (progress, logging, list changes) as it arrives, before the
 * answer: what the aggregate relays to its own client.
 */
export async function callUpstream(
  link: UpstreamLink,
  request: JsonRpcRequest,
  maxBytes = MAX_LIST_BYTES,
  onMessage?: (message: Record<string, unknown>) => void,
): Promise<CallResult> {
  const result = await sendRequest(link, request);
  if (result.outcome !== 'response') return result;
  let answer: Record<string, unknown> | undefined;
  try {
    answer = await answerIn(result.response, request.id, maxBytes, onMessage);
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
  const listed = await listUpstreamWithHint(link, method, field);
  return listed.outcome === 'listed' ? listed.items : undefined;
}

export type ListResult =
  /** `ttlMs`: the shortest a page named (2026-07-28 list results); undefined when none did. */
  | { outcome: 'listed'; items: unknown[]; ttlMs: number | undefined }
  /** A page was answered 401/403: the credential, not the list. */
  | { outcome: 'refused'; status: number }
  /** A page could not be had (`called` says how), or there were too many. */
  | { outcome: 'failed'; called: CallResult | undefined };

/** A whole list as `listUpstream` reads it, with the cache hint its pages gave, or why there is none. */
export async function listUpstreamWithHint(link: UpstreamLink, method: string, field: string): Promise<ListResult> {
  const items: unknown[] = [];
  let ttlMs: number | undefined;
  let cursor: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const called = await callUpstream(link, { jsonrpc: '2.0', id: gatewayId(field), method, params: cursor === undefined ? {} : { cursor } });
    if (called.outcome === 'response' && (called.response.status === 401 || called.response.status === 403)) {
      return { outcome: 'refused', status: called.response.status };
    }
    const result = called.outcome === 'response' && isObject(called.answer?.result) ? called.answer.result : undefined;
    const list = result?.[field];
    if (!result || !Array.isArray(list)) return { outcome: 'failed', called };
    items.push(...list);
    if (typeof result.ttlMs === 'number' && Number.isFinite(result.ttlMs) && result.ttlMs >= 0) ttlMs = Math.min(ttlMs ?? result.ttlMs, result.ttlMs);
    if (typeof result.nextCursor !== 'string') return { outcome: 'listed', items, ttlMs };
    cursor = result.nextCursor;
  }
  return { outcome: 'failed', called: undefined };
}

/**
 * Opens a conversation as an MCP client would, in the newest revision both sides speak: asks
 * `server/discover` (remembered a few minutes per upstream), and falls back to `initialize` (and
 * `notifications/initialized`) for a 2025-era server.
 */
export async function openConversation(link: UpstreamLink): Promise<Conversation> {
  const remembered = knownRevision(link.url);
  const opened = await openAs(link, remembered);
  // The upstream may have changed since: ask it again rather than fail on an old verdict.
  if (remembered !== undefined && opened.outcome === 'failed') {
    forgetRevision(link.url);
    return openAs(link, undefined);
  }
  return opened;
}

async function openAs(link: UpstreamLink, remembered: 'modern' | 'legacy' | undefined): Promise<Conversation> {
  const modern = withHeaders(link, [['MCP-Protocol-Version', MODERN_PROTOCOL_VERSION]]);
  if (remembered === 'modern') return { outcome: 'open', revision: MODERN_PROTOCOL_VERSION, link: modern, server: {}, end: async () => {} };
  if (remembered === undefined) {
    const called = await callUpstream(modern, { jsonrpc: '2.0', id: gatewayId('discover'), method: 'server/discover', params: {} }, MAX_OPENING_BYTES);
    if (called.outcome !== 'response') return { outcome: 'failed', method: 'server/discover', called };
    const verdict = discoverVerdict(called.response.status, called.answer);
    if (verdict === 'refused') return { outcome: 'refused', status: called.response.status };
    if (verdict === 'unavailable') return { outcome: 'failed', method: 'server/discover', called };
    rememberRevision(link.url, verdict);
    const result = called.answer?.result;
    if (verdict === 'modern')
      return { outcome: 'open', revision: MODERN_PROTOCOL_VERSION, link: modern, server: isObject(result) ? result : {}, end: async () => {} };
  }

  const initialize = { protocolVersion: LEGACY_PROTOCOL_VERSION, capabilities: {}, clientInfo: { ...CLIENT_INFO } };
  const bare = withHeaders(link, [], ['MCP-Protocol-Version', 'Mcp-Session-Id']);
  const called = await callUpstream(bare, { jsonrpc: '2.0', id: gatewayId('initialize'), method: 'initialize', params: initialize }, MAX_OPENING_BYTES);
  if (called.outcome === 'response' && (called.response.status === 401 || called.response.status === 403)) {
    return { outcome: 'refused', status: called.response.status };
  }
  const result = called.outcome === 'response' && isObject(called.answer?.result) ? called.answer.result : undefined;
  if (called.outcome !== 'response' || !result) return { outcome: 'failed', method: 'initialize', called };
  // The server answers with the revision it speaks; a 2025-era one, or the conversation is not what it seems.
  const revision = typeof result.protocolVersion === 'string' && !isModernRevision(result.protocolVersion) ? result.protocolVersion : LEGACY_PROTOCOL_VERSION;
  const session = called.response.headers.get('Mcp-Session-Id');
  const next = withHeaders(bare, [['MCP-Protocol-Version', revision], ...(session ? ([['Mcp-Session-Id', session]] as const) : [])]);
  const notified = await sendRequest(next, { jsonrpc: '2.0', method: 'notifications/initialized' });
  if (notified.outcome === 'response') await notified.response.body?.cancel().catch(() => {});
  // Ends the session the conversation opened (DELETE may be refused with 405: that is fine).
  const end = session ? () => endSession({ ...next, timeoutMs: Math.min(next.timeoutMs, CHECK_TIMEOUT_MS) }, session, revision) : async () => {};
  return { outcome: 'open', revision, link: next, server: result, end };
}

/**
 * Watches an upstream for change notifications until its stream ends or `link.signal` aborts:
 * `subscriptions/listen` (asking for tool, prompt and resource list changes) on a 2026-07-28 link, the GET
 * stream of the link's session on a 2025 one. Each message of the stream is handed to `onMessage`.
 * Resolves `false` when there was nothing to watch (a 2025 link without a session, or no stream).
 */
export async function watchUpstream(link: UpstreamLink, onMessage: (message: Record<string, unknown>) => void): Promise<boolean> {
  let result: UpstreamResult;
  if (isModernRevision(link.headers.get('MCP-Protocol-Version'))) {
    const params = { notifications: { toolsListChanged: true, promptsListChanged: true, resourcesListChanged: true } };
    result = await sendRequest(link, { jsonrpc: '2.0', id: gatewayId('listen'), method: 'subscriptions/listen', params });
  } else {
    if (!link.headers.has('Mcp-Session-Id')) return false;
    const headers = new Headers(link.headers);
    headers.set('Accept', 'text/event-stream');
    headers.delete('Content-Type');
    result = await forwardToUpstream(link.url, { method: 'GET', headers, body: null, signal: link.signal, timeoutMs: link.timeoutMs });
  }
  if (result.outcome !== 'response') return false;
  const { response } = result;
  if (!response.ok || !response.body || !/^text\/event-stream\s*(;|$)/i.test(response.headers.get('Content-Type') ?? '')) {
    await response.body?.cancel().catch(() => {});
    return false;
  }
  const reader = rewriteJsonRpcEvents(response.body, (message) => {
    if (isObject(message)) onMessage(message);
    return undefined;
  }).getReader();
  try {
    while (!(await reader.read()).done);
  } catch {
    // The stream broke or was aborted: the watch is over.
  } finally {
    reader.cancel().catch(() => {});
  }
  return true;
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
async function answerIn(
  response: Response,
  id: string | number,
  maxBytes: number,
  onMessage?: (message: Record<string, unknown>) => void,
): Promise<Record<string, unknown> | undefined> {
  const type = response.headers.get('Content-Type') ?? '';
  const json = /^application\/json\s*(;|$)/i.test(type);
  // An error status's JSON body may still be the JSON-RPC answer (2026-07-28 servers send one).
  if (!response.body || (!response.ok && !json)) {
    response.body?.cancel().catch(() => {});
    return undefined;
  }
  const key = idKey(id);
  const answerOf = (message: unknown) => (isObject(message) && idKey(message.id) === key ? message : undefined);
  if (json) {
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
    if (found) return undefined;
    found = answerOf(message);
    if (!found && onMessage && isObject(message)) onMessage(message);
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

/** The link with these headers set and those removed. */
function withHeaders(link: UpstreamLink, set: ReadonlyArray<readonly [string, string]>, remove: readonly string[] = []): UpstreamLink {
  const headers = new Headers(link.headers);
  for (const name of remove) headers.delete(name);
  for (const [name, value] of set) headers.set(name, value);
  return { ...link, headers };
}

/** A request id the gateway's own requests use: never one a client's conversation could hold. */
export function gatewayId(purpose: string): string {
  return `mcp-oauth-gateway-${purpose}-${crypto.randomUUID()}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

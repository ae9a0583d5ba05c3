/**
 * The tool policy and rate limit in the proxy: the two points where the handler calls into
 * src/policy/. Before forwarding, `gateToolRequest` decides what goes upstream (answering refused
 * calls itself, fetching annotations when `readOnly` needs them); after, its `respond` filters
 * `tools/list` answers out of the upstream's JSON or SSE and merges the gateway's answers in.
 * Fails closed: what cannot be read is not forwarded, and a list that cannot be checked is not
 * passed on.
 */

import type { UpstreamConfig } from '../config';
import type { ToolRules } from '../config/policy';
import { parseExactJson } from '../lib/exact-json';
import { forgetTools, knownReadOnly, rememberTools } from '../policy/annotations';
import { takeRequests } from '../policy/rate-limiter';
import { callsNeedingAnnotations, idKey, type ListMatch, planToolRequest, rewriteListAnswers, type ToolRequestPlan } from '../policy/tool-messages';
import { isObject } from '../policy/tool-rules';
import { rewriteJsonRpcEvents, sseEvent } from '../policy/tools-sse';
import { withCors } from './headers';
import { type JsonRpcId, jsonRpcErrorResponse } from './jsonrpc-error';
import type { ProxyOutcome } from './log';

/** Bounds the gateway's own `tools/list` fetch: pages followed, and bytes read per page. */
const MAX_LIST_PAGES = 50;
const MAX_LIST_BYTES = 8 * 1024 * 1024;

export interface ToolGateInput {
  rules: ToolRules;
  method: string;
  /** The parsed and checked body (src/proxy/message.ts); undefined when there is none to judge. */
  message: unknown;
  hasBody: boolean;
  /** Where and how the request goes upstream: reused, with the client's session, to fetch the list. */
  target: URL;
  upstreamHeaders: Headers;
  signal: AbortSignal;
  timeoutMs: number;
  origin: string | null;
  id: JsonRpcId;
}

export interface ForwardedUnderPolicy {
  kind: 'forward';
  /** Replaces the request body when some calls of a batch were refused. */
  body: ArrayBuffer | undefined;
  outcome: ProxyOutcome;
  /** The client's response, from the upstream's. */
  respond: (upstream: Response) => Promise<Response>;
}

export type ToolGate =
  /** Answered by the gateway; nothing goes upstream. */
  { kind: 'answer'; response: Response; outcome: ProxyOutcome } | ForwardedUnderPolicy;

/** Decides what of this request may go upstream under `rules`. */
export async function gateToolRequest(input: ToolGateInput): Promise<ToolGate> {
  const { rules, origin } = input;
  if (input.method === 'GET') {
    // A GET stream is tied to no request: a `tools/list` answer on it (a resumed stream replaying
    // one, or the legacy transport's answers) is recognised by its shape.
    return { kind: 'forward', body: undefined, outcome: 'ok', respond: (r) => respondFiltered(r, rules, 'shape', [], false, origin) };
  }
  if (input.method !== 'POST' || !input.hasBody) {
    return { kind: 'forward', body: undefined, outcome: 'ok', respond: async (r) => r };
  }
  // The handler refuses an unreadable body first; this stays so the policy fails closed on its own.
  if (input.message === undefined) {
    return { kind: 'answer', response: jsonRpcErrorResponse('uninspectable', input.id, origin), outcome: 'uninspectable' };
  }

  const unknown = callsNeedingAnnotations(rules, input.message).filter((name) => knownReadOnly(rules, name) === undefined);
  if (unknown.length > 0) await fetchToolList(input);
  const plan = planToolRequest(rules, input.message, (name) => knownReadOnly(rules, name)?.readOnly);
  const outcome: ProxyOutcome = plan.refused ? 'tool_refused' : 'ok';

  if (plan.forward === 'nothing') return { kind: 'answer', response: answerAlone(plan, origin), outcome };
  const body = Array.isArray(plan.forward) ? (new TextEncoder().encode(JSON.stringify(plan.forward)).buffer as ArrayBuffer) : undefined;
  // Under readOnly an answer stream is still watched for notifications/tools/list_changed.
  const untouched = plan.listIds.size === 0 && plan.answers.length === 0;
  if (untouched && !rules.readOnly) return { kind: 'forward', body, outcome, respond: async (r) => r };
  return {
    kind: 'forward',
    body,
    outcome,
    respond: (r) => respondFiltered(r, rules, { ids: plan.listIds }, plan.answers, plan.batch, origin),
  };
}

/** The gateway's answers, when every request of the body was refused. */
function answerAlone(plan: ToolRequestPlan, origin: string | null): Response {
  if (plan.answers.length === 0) return new Response(null, { status: 202, headers: withCors(new Headers(), origin) });
  return jsonResponse(plan.batch ? plan.answers : plan.answers[0], 200, origin);
}

/**
 * The upstream's answer with `tools/list` results filtered and the gateway's `answers` added:
 * a JSON body is rewritten whole (it is one document anyway), an event stream event by event.
 */
async function respondFiltered(
  upstream: Response,
  rules: ToolRules,
  match: ListMatch,
  answers: unknown[],
  batch: boolean,
  origin: string | null,
): Promise<Response> {
  const remember = (tools: unknown[]) => {
    if (rules.readOnly) rememberTools(rules, tools);
  };
  const type = upstream.headers.get('Content-Type') ?? '';
  const init = { status: upstream.status, statusText: upstream.statusText, headers: upstream.headers };

  if (!upstream.ok || upstream.body === null) {
    // A 202 for a batch whose forwarded part held only notifications: the refusals are the answer.
    if (upstream.ok && answers.length > 0) return jsonResponse(batch ? answers : answers[0], 200, origin);
    return upstream;
  }
  const onlyWatching = match !== 'shape' && match.ids.size === 0 && answers.length === 0;
  if (/^text\/event-stream\s*(;|$)/i.test(type)) {
    const body = rewriteJsonRpcEvents(
      upstream.body,
      (message) => {
        if (isObject(message) && message.method === 'notifications/tools/list_changed') forgetTools(rules);
        return rewriteListAnswers(rules, message, match, remember);
      },
      { prefix: answers.map(sseEvent).join(''), ...(onlyWatching ? { worthParsing: (data: string) => data.includes('list_changed') } : {}) },
    );
    return new Response(body, init);
  }
  if (match === 'shape' || onlyWatching) return upstream;

  let parsed: unknown;
  try {
    // Exactly: numbers in the other answers of a batch pass unchanged.
    parsed = /^application\/json\s*(;|$)/i.test(type) ? parseExactJson(await upstream.text()) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined) {
    upstream.body?.cancel().catch(() => {});
    return jsonResponse(
      { jsonrpc: '2.0', id: null, error: { code: -32004, message: 'the upstream MCP server sent an answer the gateway could not check' } },
      502,
      origin,
    );
  }
  const rewritten = rewriteListAnswers(rules, parsed, match, remember) ?? parsed;
  const merged = answers.length === 0 ? rewritten : [...(Array.isArray(rewritten) ? rewritten : [rewritten]), ...answers];
  const headers = new Headers(upstream.headers);
  headers.delete('Content-Length');
  return new Response(JSON.stringify(merged), { ...init, headers });
}

/**
 * The upstream's whole tool list, fetched with the caller's credential and session (a new session
 * would cost an initialize), following `nextCursor`; remembered for `readOnly` calls. A list that
 * cannot be had leaves the tools unknown, so the calls that needed it are refused.
 */
async function fetchToolList(input: ToolGateInput): Promise<void> {
  const tools: unknown[] = [];
  let cursor: string | undefined;
  const signal = AbortSignal.any([input.signal, AbortSignal.timeout(input.timeoutMs)]);
  const headers = new Headers(input.upstreamHeaders);
  headers.set('Content-Type', 'application/json');
  headers.set('Accept', 'application/json, text/event-stream');
  headers.delete('Last-Event-ID');
  // Newer revisions name the method (and tool) in headers, which servers may check against the body.
  headers.delete('Mcp-Name');
  if (headers.has('Mcp-Method')) headers.set('Mcp-Method', 'tools/list');
  try {
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const id = `mcp-oauth-gateway-tools-${crypto.randomUUID()}`;
      const request = { jsonrpc: '2.0', id, method: 'tools/list', params: cursor === undefined ? {} : { cursor } };
      const response = await fetch(input.target, { method: 'POST', headers, body: JSON.stringify(request), redirect: 'manual', signal });
      const result = await listResultIn(response, id);
      if (!result || !Array.isArray(result.tools)) return;
      tools.push(...result.tools);
      if (typeof result.nextCursor !== 'string') {
        rememberTools(input.rules, tools, { complete: true });
        return;
      }
      cursor = result.nextCursor;
    }
  } catch {
    // Unreachable, timed out, or the client went away: the tools stay unknown.
  }
}

/** The `result` of the answer with this id, from a JSON or SSE response; undefined otherwise. */
async function listResultIn(response: Response, id: string): Promise<Record<string, unknown> | undefined> {
  const type = response.headers.get('Content-Type') ?? '';
  if (!response.ok || !response.body) {
    response.body?.cancel().catch(() => {});
    return undefined;
  }
  const key = idKey(id);
  const resultOf = (message: unknown) => (isObject(message) && idKey(message.id) === key && isObject(message.result) ? message.result : undefined);
  if (/^application\/json\s*(;|$)/i.test(type)) {
    const text = await response.text();
    if (text.length > MAX_LIST_BYTES) return undefined;
    return resultOf(JSON.parse(text));
  }
  if (!/^text\/event-stream\s*(;|$)/i.test(type)) {
    response.body.cancel().catch(() => {});
    return undefined;
  }
  // Read events until the one answering `id`; other messages on this stream are not ours to act on.
  let found: Record<string, unknown> | undefined;
  const reader = rewriteJsonRpcEvents(response.body, (message) => {
    found ??= resultOf(message);
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

/**
 * Counts `cost` requests (each JSON-RPC request of the body, at least one) against the upstream's
 * `rateLimit`, all or none; a 429 with `Retry-After` when they would cross it, and nothing of the
 * body goes upstream. A limiter that cannot answer lets the request through (logged): a broken
 * counter should not take every upstream down.
 */
export async function rateLimitResponse(
  upstream: UpstreamConfig,
  email: string,
  cost: number,
  id: JsonRpcId,
  origin: string | null,
): Promise<Response | undefined> {
  if (!upstream.rateLimit) return undefined;
  const { requests, periodSeconds } = upstream.rateLimit;
  let seconds: number;
  let message: string;
  if (cost > requests) {
    // More than the whole allowance: no wait makes it fit, so no limiter is asked.
    seconds = periodSeconds;
    message = `a batch of ${cost} requests is more than this server's rate limit of ${requests} requests per ${periodSeconds} s allows: send fewer at once`;
  } else {
    const verdict = await takeRequests(upstream.rateLimit, upstream.name, email, cost);
    if (!verdict || verdict.ok) return undefined;
    seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
    message = `rate limit of ${requests} requests per ${periodSeconds} s reached for this server: retry in ${seconds} s`;
  }
  const response = jsonResponse({ jsonrpc: '2.0', id, error: { code: -32006, message, data: { retryAfter: seconds } } }, 429, origin);
  response.headers.set('Retry-After', String(seconds));
  return response;
}

function jsonResponse(message: unknown, status: number, origin: string | null): Response {
  const headers = withCors(new Headers({ 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }), origin);
  return new Response(JSON.stringify(message), { status, headers });
}

/**
 * The tool policy and rate limit in the proxy: the two points where the handler calls into
 * src/policy/. Before forwarding, `gateToolRequest` decides what goes upstream (answering refused
 * calls itself, fetching annotations when `readOnly` needs them); after, its `respond` filters
 * `tools/list` answers out of the upstream's JSON or SSE and merges the gateway's answers in.
 * Fails closed: what cannot be read is not forwarded, and a list that cannot be checked is not
 * passed on.
 */

import type { ToolRules, UpstreamConfig } from '../config';
import { type EndpointRewrite, isRawJsonNumber, parseExactJson, rewriteJsonRpcEvents, sseEvent } from '../lib';
import {
  callsNeedingAnnotations,
  forgetTools,
  isObject,
  knownReadOnly,
  type ListMatch,
  planToolRequest,
  rememberTools,
  rewriteListAnswers,
  type ToolRefusal,
  takeRequests,
} from '../policy';
import { listUpstream } from '../upstreams';
import { withCors } from './headers';
import { type JsonRpcId, jsonRpcAnswerResponse, jsonRpcErrorAnswer, jsonRpcErrorResponse, ProxyError } from './jsonrpc-error';
import type { ProxyOutcome } from './log';

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
  /**
   * The client's response, from the upstream's. `endpoint` is given for a GET event stream, which
   * may be a legacy one: its endpoint events are rewritten in the same pass as the lists.
   */
  respond: (upstream: Response, endpoint?: EndpointRewrite) => Promise<Response>;
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
    return { kind: 'forward', body: undefined, outcome: 'ok', respond: (r, endpoint) => respondFiltered(r, rules, 'shape', [], false, origin, endpoint) };
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
  const outcome: ProxyOutcome = plan.refused ? `${plan.refused}_refused` : 'ok';
  const answers = plan.refusals.map(toolRefusal);

  if (plan.forward === 'nothing') return { kind: 'answer', response: answerAlone(answers, plan.batch, origin), outcome };
  const body = Array.isArray(plan.forward) ? (new TextEncoder().encode(JSON.stringify(plan.forward)).buffer as ArrayBuffer) : undefined;
  // Under readOnly an answer stream is still watched for notifications/tools/list_changed.
  const untouched = plan.listIds.size === 0 && plan.contentListIds.size === 0 && answers.length === 0;
  if (untouched && !rules.readOnly) return { kind: 'forward', body, outcome, respond: async (r) => r };
  return {
    kind: 'forward',
    body,
    outcome,
    respond: (r) => respondFiltered(r, rules, { ids: plan.listIds, content: plan.contentListIds }, answers, plan.batch, origin),
  };
}

const REFUSED = { tool: 'toolRefused', resource: 'resourceRefused', prompt: 'promptRefused' } as const;

/** The answer to a refused request: the request's id, code -32602. */
function toolRefusal({ id, name, kind }: ToolRefusal): unknown {
  const safeId = typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) || isRawJsonNumber(id) ? id : null;
  return jsonRpcErrorAnswer(REFUSED[kind], safeId, { name: name ?? '(unnamed)' });
}

/** The gateway's answers, when every request of the body was refused. */
function answerAlone(answers: unknown[], batch: boolean, origin: string | null): Response {
  if (answers.length === 0) return new Response(null, { status: 202, headers: withCors(new Headers(), origin) });
  return jsonRpcAnswerResponse(batch ? answers : answers[0], 200, origin);
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
  endpoint?: EndpointRewrite,
): Promise<Response> {
  const remember = (tools: unknown[]) => {
    if (rules.readOnly) rememberTools(rules, tools);
  };
  const type = upstream.headers.get('Content-Type') ?? '';
  const init = { status: upstream.status, statusText: upstream.statusText, headers: upstream.headers };

  // A 202 carries no JSON-RPC answer, whatever its body says ("Accepted"): the legacy transport
  // answers on its GET stream, which is filtered there.
  if (!upstream.ok || upstream.body === null || upstream.status === 202) {
    // A 202 for a batch whose forwarded part held only notifications: the refusals are the answer.
    if (upstream.ok && answers.length > 0) {
      upstream.body?.cancel().catch(() => {});
      return jsonRpcAnswerResponse(batch ? answers : answers[0], 200, origin);
    }
    return upstream;
  }
  const onlyWatching = match !== 'shape' && match.ids.size === 0 && (match.content?.size ?? 0) === 0 && answers.length === 0;
  if (/^text\/event-stream\s*(;|$)/i.test(type)) {
    const body = rewriteJsonRpcEvents(
      upstream.body,
      (message) => {
        if (isObject(message) && message.method === 'notifications/tools/list_changed') forgetTools(rules);
        return rewriteListAnswers(rules, message, match, remember);
      },
      { prefix: answers.map(sseEvent).join(''), endpoint, ...(onlyWatching ? { worthParsing: (data: string) => data.includes('list_changed') } : {}) },
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
    const { status } = ProxyError.uncheckableAnswer;
    return jsonRpcAnswerResponse(jsonRpcErrorAnswer('uncheckableAnswer', null), status, origin);
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
  const signal = AbortSignal.any([input.signal, AbortSignal.timeout(input.timeoutMs)]);
  const tools = await listUpstream({ url: input.target, headers: input.upstreamHeaders, timeoutMs: input.timeoutMs, signal }, 'tools/list', 'tools');
  // Unreachable, timed out, or the client went away: the tools stay unknown.
  if (tools) rememberTools(input.rules, tools, { complete: true });
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
  let kind: 'batchOverRateLimit' | 'rateLimited';
  if (cost > requests) {
    // More than the whole allowance: no wait makes it fit, so no limiter is asked.
    seconds = periodSeconds;
    kind = 'batchOverRateLimit';
  } else {
    const verdict = await takeRequests(upstream.rateLimit, upstream.name, email, cost);
    if (!verdict || verdict.ok) return undefined;
    seconds = Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
    kind = 'rateLimited';
  }
  const answer = jsonRpcErrorAnswer(kind, id, { cost, requests, period: periodSeconds, seconds }, { retryAfter: seconds });
  const response = jsonRpcAnswerResponse(answer, ProxyError[kind].status, origin);
  response.headers.set('Retry-After', String(seconds));
  return response;
}

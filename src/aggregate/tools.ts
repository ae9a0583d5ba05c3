/**
 * An aggregate's tools: the lists of its members' upstreams merged under prefixed names, and a
 * call routed to the one upstream its name names. Every upstream request goes through the
 * gateway's one upstream client (src/upstreams/): the bounded fetch, the revision each upstream
 * speaks, and a 2025 session opened for the request and ended after it.
 *
 * No MCP SDK here: src/aggregate/server.ts turns these outcomes into the SDK's answers.
 */
import { isObject, isToolAvailable, isToolNameAllowed } from '../policy';
import { type CallResult, callUpstream, gatewayId } from '../upstreams';
import { type LeftOutReason, type SessionLinks, withConversation } from './conversation';
import { forgetList } from './list-cache';
import type { Member } from './members';
import { describedAs, exposedName, originalAmong, splitExposedName } from './naming';
import { type Refusal, refusals, upstreamError } from './refusals';
import { upstreamList } from './upstream-lists';

export interface ToolListOptions {
  email: string;
  origin: string;
  /** The client's request: aborting it abandons every upstream list still under way. */
  signal: AbortSignal;
  onLeftOut: (member: Member, reason: LeftOutReason) => void;
  /** The client's 2025 session, when it has one: upstream requests ride on its upstream sessions. */
  sessions?: SessionLinks | undefined;
}

/**
 * Every tool this person may use through the aggregate, asked of the upstreams in parallel, each
 * bounded by its own `timeout`: one slow or failing upstream is left out of this answer (and
 * reported), never the whole list. A `userSupplied` upstream without their token yet shows one
 * tool that says where to add it; calling any of its tools answers the same.
 */
export async function listTools(members: readonly Member[], options: ToolListOptions): Promise<Record<string, unknown>[]> {
  const lists = await Promise.all(
    members.map(async (member) => {
      if (!member.credential) return [addTokenTool(member, options.origin)];
      const listed = await upstreamList(member, 'tools/list', options.email, options.signal, options.sessions);
      if (!listed.ok) {
        options.onLeftOut(member, listed.reason);
        return [];
      }
      return exposedTools(member, listed.items);
    }),
  );
  // A shortened name could in theory collide within one upstream's list: the first one listed keeps it.
  const seen = new Set<string>();
  return lists.flat().filter((tool) => !seen.has(tool.name as string) && seen.add(tool.name as string));
}

/** One upstream's tools this person may see, renamed and described as the aggregate shows them. */
function exposedTools(member: Member, tools: readonly unknown[]): Record<string, unknown>[] {
  const { rules, label, upstream } = member;
  return tools
    .filter((tool): tool is Record<string, unknown> & { name: string } => isObject(tool) && typeof tool.name === 'string')
    .filter((tool) => !rules || isToolAvailable(rules, tool))
    .map((tool) => ({ ...tool, name: exposedName(upstream.name, tool.name), description: describedAs(label, tool.description) }));
}

function addTokenTool(member: Member, origin: string): Record<string, unknown> {
  return {
    name: exposedName(member.upstream.name, 'add_token'),
    description: describedAs(member.label, `You have no ${member.label} token yet: add one at ${origin}/connections and ${member.label}'s tools appear here.`),
    inputSchema: { type: 'object', properties: {} },
    annotations: { readOnlyHint: true },
  };
}

/** Where a call goes: the member and the upstream's own tool name, or the refusal to answer instead. */
export type CallRoute = { ok: true; member: Member; tool: string } | { ok: false; refusal: Refusal; member?: Member };

/**
 * Routes an exposed tool name. A name under 64 characters says the tool's name whole; one of
 * exactly 64 may be shortened, so it is matched against the upstream's list (cached, else
 * fetched). A tool the person's rules hide is refused as if it did not exist; under `readOnly`
 * the list decides, since only it carries the annotations.
 */
export async function routeCall(members: readonly Member[], name: string, options: Omit<ToolListOptions, 'onLeftOut'>): Promise<CallRoute> {
  const split = splitExposedName(
    name,
    members.map((member) => member.upstream.name),
  );
  const member = split && members.find((m) => m.upstream.name === split.upstream);
  if (!split || !member) return { ok: false, refusal: refusals.unknownTool(name) };
  if (!member.credential) return { ok: false, refusal: refusals.noOwnToken(member, options.origin), member };

  let tool = split.original;
  const needsList = tool === undefined || member.rules?.readOnly === true;
  if (!needsList) {
    if (tool !== undefined && member.rules && !isToolNameAllowed(member.rules, tool)) return { ok: false, refusal: refusals.unknownTool(name), member };
    return tool === undefined ? { ok: false, refusal: refusals.unknownTool(name), member } : { ok: true, member, tool };
  }
  const listed = await upstreamList(member, 'tools/list', options.email, options.signal, options.sessions);
  if (!listed.ok) return { ok: false, refusal: listRefusal(member, listed.reason, options.origin), member };
  const tools = listed.items.filter((t): t is Record<string, unknown> & { name: string } => isObject(t) && typeof t.name === 'string');
  tool ??= originalAmong(
    member.upstream.name,
    name,
    tools.map((t) => t.name),
  );
  const listedTool = tools.find((t) => t.name === tool);
  if (tool === undefined || !listedTool || (member.rules && !isToolAvailable(member.rules, listedTool))) {
    return { ok: false, refusal: refusals.unknownTool(name), member };
  }
  return { ok: true, member, tool };
}

export function listRefusal(member: Member, reason: LeftOutReason, origin: string): Refusal {
  if (reason === 'refused') return refusals.refusedCredential(member, origin);
  if (reason === 'timeout') return refusals.timeout(member);
  if (reason === 'unreachable') return refusals.unreachable(member);
  return refusals.noAnswer(member);
}

export interface CallOptions {
  email: string;
  origin: string;
  signal: AbortSignal;
  sessions?: SessionLinks | undefined;
  /** Each notification of the upstream's answer stream, as it arrives (progress, logging). */
  onNotification: (message: { method: string; params?: Record<string, unknown> }) => void;
}

export type CallOutcome =
  | { ok: true; result: Record<string, unknown>; upstreamStatus: number }
  /** The upstream's own JSON-RPC error, passed on as the call's; or the gateway's refusal. */
  | { ok: false; refusal: Refusal & { data?: unknown }; upstreamStatus: number | undefined; outcome: string };

/**
 * `tools/call` of the upstream's own `tool`, with the client's arguments and `_meta` (its
 * `progressToken` among them, so the upstream's progress carries the client's token). The
 * upstream's progress and log notifications are handed on as they arrive; a
 * `notifications/tools/list_changed` on the way drops the person's cached list.
 */
export async function callTool(member: Member, tool: string, params: Record<string, unknown>, options: CallOptions): Promise<CallOutcome> {
  const meta = isObject(params._meta) ? withoutEnvelope(params._meta) : undefined;
  const forwarded = { ...params, name: tool, ...(meta ? { _meta: meta } : {}) };
  if (!meta) delete forwarded._meta;
  const outcome = await withConversation(
    member,
    options.signal,
    async (link) => {
      const called = await callUpstream(link, { jsonrpc: '2.0', id: gatewayId('call'), method: 'tools/call', params: forwarded }, undefined, (message) => {
        if (typeof message.method !== 'string') return;
        if (message.method === 'notifications/tools/list_changed') forgetList('tools/list', member.upstream, options.email);
        if (message.method === 'notifications/progress' || message.method === 'notifications/message') {
          options.onNotification({ method: message.method, ...(isObject(message.params) ? { params: message.params } : {}) });
        }
      });
      return { called };
    },
    { sessions: options.sessions, stale: ({ called }) => called.outcome === 'response' && called.response.status === 404 },
  );
  if ('refusal' in outcome) {
    const refusal = outcome.reason === 'refused' ? refusals.refusedCredential(member, options.origin) : conversationRefusal(member, outcome.called);
    return { ok: false, refusal, upstreamStatus: outcome.status, outcome: outcome.reason === 'refused' ? 'upstream_refused_credential' : outcome.reason };
  }
  const { called } = outcome;
  if (called.outcome !== 'response') return { ok: false, refusal: conversationRefusal(member, called), upstreamStatus: undefined, outcome: called.outcome };
  const status = called.response.status;
  if (status === 401 || status === 403) {
    return { ok: false, refusal: refusals.refusedCredential(member, options.origin), upstreamStatus: status, outcome: 'upstream_refused_credential' };
  }
  const { answer } = called;
  // As the proxy logs an upstream's error answer it passed on: `ok`.
  if (isObject(answer?.error)) return { ok: false, refusal: upstreamError(member, answer.error), upstreamStatus: status, outcome: 'ok' };
  if (!isObject(answer?.result)) return { ok: false, refusal: refusals.noAnswer(member), upstreamStatus: status, outcome: 'unreachable' };
  return { ok: true, result: answer.result, upstreamStatus: status };
}

/** What a call that got no answer tells the client. */
function conversationRefusal(member: Member, called: CallResult | undefined): Refusal {
  if (called?.outcome === 'timeout') return refusals.timeout(member);
  if (called?.outcome === 'response') return refusals.noAnswer(member);
  return refusals.unreachable(member);
}

/** The `_meta` without the 2026-07-28 envelope's keys: those are the gateway's own to set upstream. */
function withoutEnvelope(meta: Record<string, unknown>): Record<string, unknown> | undefined {
  const kept = Object.entries(meta).filter(([key]) => !key.startsWith('io.modelcontextprotocol/'));
  return kept.length > 0 ? Object.fromEntries(kept) : undefined;
}

/**
 * An aggregate's tools: the lists of its members' upstreams merged under prefixed names, and a
 * call routed to the one upstream its name names. Every upstream request goes through the
 * gateway's one upstream client (src/upstreams/): the bounded fetch, the revision each upstream
 * speaks, and a 2025 session opened for the request and ended after it.
 *
 * No MCP SDK here: src/aggregate/server.ts turns these outcomes into the SDK's answers.
 */
import { isObject, isToolAvailable, isToolNameAllowed } from '../policy';
import { scrubSecrets } from '../proxy';
import { type CallResult, callUpstream, gatewayId, linkFor, listUpstreamWithHint, openConversation, type UpstreamLink } from '../upstreams';
import { cachedList, forgetList, keepList } from './list-cache';
import type { Member } from './members';
import { describedAs, exposedName, originalAmong, splitExposedName } from './naming';
import { type Refusal, refusals } from './refusals';

/** Why an upstream's tools are missing from one list answer (named in the log). */
export type LeftOutReason = 'timeout' | 'unreachable' | 'refused' | 'failed' | 'client_closed';

type ListOutcome = { ok: true; tools: readonly unknown[] } | { ok: false; reason: LeftOutReason };

export interface ToolListOptions {
  email: string;
  origin: string;
  /** The client's request: aborting it abandons every upstream list still under way. */
  signal: AbortSignal;
  onLeftOut: (member: Member, reason: LeftOutReason) => void;
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
      const listed = await upstreamTools(member, options.email, options.signal);
      if (!listed.ok) {
        options.onLeftOut(member, listed.reason);
        return [];
      }
      return exposedTools(member, listed.tools);
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

/** The upstream's whole list as this person's credential sees it: cached, else asked within its timeout. */
async function upstreamTools(member: Member, email: string, signal: AbortSignal): Promise<ListOutcome> {
  const { upstream } = member;
  const cached = cachedList(upstream, email);
  if (cached) return { ok: true, tools: cached };
  const deadline = AbortSignal.timeout(upstream.timeoutMs);
  const outcome = await withConversation(member, AbortSignal.any([signal, deadline]), async (link) => {
    const listed = await listUpstreamWithHint(link, 'tools/list', 'tools');
    if (listed.outcome === 'refused') return { ok: false, reason: 'refused' } as const;
    if (listed.outcome === 'failed') {
      const how = listed.called?.outcome;
      return { ok: false, reason: how === 'timeout' || how === 'unreachable' || how === 'client_closed' ? how : 'failed' } as const;
    }
    keepList(upstream, email, listed.items, listed.ttlMs);
    return { ok: true, tools: listed.items } as const;
  });
  if ('refusal' in outcome) {
    if (deadline.aborted) return { ok: false, reason: 'timeout' };
    return { ok: false, reason: outcome.reason };
  }
  if (!outcome.ok && deadline.aborted) return { ok: false, reason: 'timeout' };
  return outcome;
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
  const listed = await upstreamTools(member, options.email, options.signal);
  if (!listed.ok) return { ok: false, refusal: listRefusal(member, listed.reason, options.origin), member };
  const tools = listed.tools.filter((t): t is Record<string, unknown> & { name: string } => isObject(t) && typeof t.name === 'string');
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

function listRefusal(member: Member, reason: LeftOutReason, origin: string): Refusal {
  if (reason === 'refused') return refusals.refusedCredential(member, origin);
  if (reason === 'timeout') return refusals.timeout(member);
  if (reason === 'unreachable') return refusals.unreachable(member);
  return refusals.noAnswer(member);
}

export interface CallOptions {
  email: string;
  origin: string;
  signal: AbortSignal;
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
  const outcome = await withConversation(member, options.signal, async (link) => {
    const called = await callUpstream(link, { jsonrpc: '2.0', id: gatewayId('call'), method: 'tools/call', params: forwarded }, undefined, (message) => {
      if (typeof message.method !== 'string') return;
      if (message.method === 'notifications/tools/list_changed') forgetList(member.upstream, options.email);
      if (message.method === 'notifications/progress' || message.method === 'notifications/message') {
        options.onNotification({ method: message.method, ...(isObject(message.params) ? { params: message.params } : {}) });
      }
    });
    return { called };
  });
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
  if (isObject(answer?.error)) {
    const { code, message, data } = answer.error;
    const secrets = member.credential ? [member.credential.token, member.credential.header[1]] : [];
    return {
      ok: false,
      refusal: {
        code: typeof code === 'number' && Number.isInteger(code) ? code : -32603,
        message: scrubSecrets(typeof message === 'string' ? message : 'upstream error', secrets, false),
        ...(data === undefined ? {} : { data: JSON.parse(scrubSecrets(JSON.stringify(data), secrets, false)) as unknown }),
      },
      upstreamStatus: status,
      // As the proxy logs an upstream's error answer it passed on.
      outcome: 'ok',
    };
  }
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

type Opened<T> = T | { refusal: true; reason: LeftOutReason; status: number | undefined; called: CallResult | undefined };

/**
 * Opens a conversation with the member's upstream (its revision, and for a 2025 server with
 * sessions one session), runs `work` on it, and ends it: nothing is left open upstream.
 */
async function withConversation<T extends object>(member: Member, signal: AbortSignal, work: (link: UpstreamLink) => Promise<T>): Promise<Opened<T>> {
  const link = { ...linkFor(member.upstream, member.credential?.header), signal };
  const opened = await openConversation(link);
  if (opened.outcome === 'refused') return { refusal: true, reason: 'refused', status: opened.status, called: undefined };
  if (opened.outcome === 'failed') {
    const { called } = opened;
    const reason: LeftOutReason = called.outcome === 'response' ? 'failed' : called.outcome;
    return { refusal: true, reason, status: called.outcome === 'response' ? called.response.status : undefined, called };
  }
  try {
    return await work(opened.link);
  } finally {
    await opened.end();
  }
}

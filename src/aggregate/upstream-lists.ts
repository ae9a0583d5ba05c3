/**
 * One upstream's whole list (tools, prompts, resources or templates) as one person's credential sees it: from the
 * isolate's cache (list-cache.ts), else asked within the upstream's own `timeout`.
 */
import { isObject } from '../policy';
import { listUpstreamWithHint } from '../upstreams';
import { type LeftOutReason, type SessionLinks, withConversation } from './conversation';
import { cachedList, keepList, type ListKind } from './list-cache';
import type { Member } from './members';

export type ListOutcome = { ok: true; items: readonly unknown[] } | { ok: false; reason: LeftOutReason };

const FIELDS: Record<ListKind, string> = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resourceTemplates',
};

/**
 * The upstream's whole list as this person's credential sees it: cached, else asked within its
 * timeout. An upstream that answers "method not found" (one without prompts) lists nothing, and
 * is not left out.
 */
export async function upstreamList(member: Member, kind: ListKind, email: string, signal: AbortSignal, sessions?: SessionLinks): Promise<ListOutcome> {
  const { upstream } = member;
  const cached = cachedList(kind, upstream, email);
  if (cached) return { ok: true, items: cached };
  const deadline = AbortSignal.timeout(upstream.timeoutMs);
  const opened = await withConversation(
    member,
    AbortSignal.any([signal, deadline]),
    async (link) => ({ listed: await listUpstreamWithHint(link, kind, FIELDS[kind]) }),
    {
      sessions,
      stale: ({ listed }) => listed.outcome === 'failed' && listed.called?.outcome === 'response' && listed.called.response.status === 404,
    },
  );
  if ('refusal' in opened) return { ok: false, reason: deadline.aborted ? 'timeout' : opened.reason };
  const { listed } = opened;
  if (listed.outcome === 'refused') return { ok: false, reason: 'refused' };
  if (listed.outcome === 'failed') {
    const called = listed.called;
    // JSON-RPC 2.0 §5.1 "Method not found" (2026-07-28 servers send it with an error status).
    if (called?.outcome === 'response' && isObject(called.answer?.error) && called.answer.error.code === -32601) {
      keepList(kind, upstream, email, [], undefined);
      return { ok: true, items: [] };
    }
    if (deadline.aborted) return { ok: false, reason: 'timeout' };
    const how = called?.outcome;
    return { ok: false, reason: how === 'timeout' || how === 'unreachable' || how === 'client_closed' ? how : 'failed' };
  }
  keepList(kind, upstream, email, listed.items, listed.ttlMs);
  return { ok: true, items: listed.items };
}

/**
 * An aggregate's resources. URIs stay unique per upstream by a prefix on their scheme: an
 * upstream's `repo://docs/readme` is served as `<upstream>+repo://docs/readme` (a valid URI
 * scheme, `<upstream>+repo`, since upstream names hold only `a-z 0-9 -`), templates likewise
 * (`github+repo://{owner}/{name}`), and `resources/read` strips the prefix to find the upstream
 * (upstream names hold no `+`, so the first `+` ends it). URIs inside results (a read's
 * `contents`, a tool result's resource links and embedded resources) get the prefix too, so a
 * client can read what it was handed. Each upstream's `resources` rules judge its own URIs.
 */
import { contentRequestOf, filterContentResult, isObject } from '../policy';
import { callUpstream, gatewayId } from '../upstreams';
import { withConversation } from './conversation';
import type { ListKind } from './list-cache';
import type { Member } from './members';
import { describedAs } from './naming';
import { type Refusal, refusals, upstreamError } from './refusals';
import { listRefusal, type ToolListOptions } from './tools';
import { upstreamList } from './upstream-lists';

/** The URI (or template) an upstream's `uri` is served as. */
export function exposedUri(upstream: string, uri: string): string {
  return `${upstream}+${uri}`;
}

/** The upstream and its own URI behind an exposed one; undefined when it names no member. */
export function splitExposedUri(exposed: string, upstreams: readonly string[]): { upstream: string; uri: string } | undefined {
  const at = exposed.indexOf('+');
  if (at <= 0) return undefined;
  const upstream = exposed.slice(0, at);
  return upstreams.includes(upstream) ? { upstream, uri: exposed.slice(at + 1) } : undefined;
}

const LISTS = {
  'resources/list': { rules: 'resources', items: 'resources', by: 'uri' },
  'resources/templates/list': { rules: 'resources', items: 'resourceTemplates', by: 'uriTemplate' },
} as const;

/** Every resource (or template) this person may see, asked of the upstreams in parallel. */
export async function listResources(
  members: readonly Member[],
  kind: Extract<ListKind, 'resources/list' | 'resources/templates/list'>,
  options: ToolListOptions,
): Promise<Record<string, unknown>[]> {
  const list = LISTS[kind];
  const lists = await Promise.all(
    members.map(async (member) => {
      if (!member.credential) return [];
      const listed = await upstreamList(member, kind, options.email, options.signal, options.sessions);
      if (!listed.ok) {
        options.onLeftOut(member, listed.reason);
        return [];
      }
      const shown = member.rules ? (filterContentResult(member.rules, list, { [list.items]: listed.items })[list.items] as unknown[]) : listed.items;
      return shown
        .filter((item): item is Record<string, unknown> => isObject(item) && typeof item[list.by] === 'string')
        .map((item) => ({
          ...item,
          [list.by]: exposedUri(member.upstream.name, item[list.by] as string),
          description: describedAs(member.label, item.description),
        }));
    }),
  );
  return lists.flat();
}

export type ReadOutcome = ({ ok: true; result: Record<string, unknown> } | { ok: false; refusal: Refusal & { data?: unknown } }) & { member?: Member };

/** `resources/read` of the upstream's own URI behind an exposed one. */
export async function readResource(
  members: readonly Member[],
  params: Record<string, unknown>,
  options: Omit<ToolListOptions, 'onLeftOut'>,
): Promise<ReadOutcome> {
  const exposed = typeof params.uri === 'string' ? params.uri : '';
  const split = splitExposedUri(
    exposed,
    members.map((m) => m.upstream.name),
  );
  const member = split && members.find((m) => m.upstream.name === split.upstream);
  // JSON-RPC -32602 with the URI: what 2026-07-28 servers answer for a resource they do not have.
  const unknown = {
    ok: false,
    refusal: { code: -32602, message: `resource ${exposed} is not available through this gateway`, data: { uri: exposed } },
  } as const;
  if (!split || !member) return unknown;
  if (!member.credential) return { ok: false, refusal: refusals.noOwnToken(member, options.origin), member };
  const verdict = member.rules ? contentRequestOf(member.rules, { method: 'resources/read', params: { uri: split.uri } }) : undefined;
  if (verdict && !verdict.allowed) return { ...unknown, member };
  const outcome = await withConversation(
    member,
    options.signal,
    (link) => callUpstream(link, { jsonrpc: '2.0', id: gatewayId('read'), method: 'resources/read', params: { uri: split.uri } }),
    { sessions: options.sessions, stale: (called) => called.outcome === 'response' && called.response.status === 404 },
  );
  if ('refusal' in outcome) return { ok: false, refusal: listRefusal(member, outcome.reason, options.origin), member };
  if (outcome.outcome !== 'response') return { ok: false, refusal: listRefusal(member, outcome.outcome, options.origin), member };
  if (outcome.response.status === 401 || outcome.response.status === 403)
    return { ok: false, refusal: refusals.refusedCredential(member, options.origin), member };
  const answer = outcome.answer;
  if (isObject(answer?.error)) return { ok: false, refusal: upstreamError(member, answer.error), member };
  if (!isObject(answer?.result)) return { ok: false, refusal: refusals.noAnswer(member), member };
  return { ok: true, result: withExposedUris(member.upstream.name, answer.result, 'contents'), member };
}

/**
 * A result whose `field` (a read's `contents`, a call's `content`) names URIs the client should be
 * able to read back: each item's `uri`, a resource link's, an embedded resource's, prefixed.
 */
export function withExposedUris(upstream: string, result: Record<string, unknown>, field: 'contents' | 'content'): Record<string, unknown> {
  const items = result[field];
  if (!Array.isArray(items)) return result;
  const prefixed = items.map((item) => {
    if (!isObject(item)) return item;
    if (typeof item.uri === 'string') return { ...item, uri: exposedUri(upstream, item.uri) };
    if (isObject(item.resource) && typeof item.resource.uri === 'string')
      return { ...item, resource: { ...item.resource, uri: exposedUri(upstream, item.resource.uri) } };
    return item;
  });
  return { ...result, [field]: prefixed };
}

/**
 * An aggregate's prompts: named like its tools (`<upstream>_<prompt>`, naming.ts), filtered by
 * each upstream's `prompts` rules for the person, and a `prompts/get` routed to the upstream its
 * name names. A `userSupplied` upstream without the person's token lists no prompts (its
 * `add_token` tool says why); getting one answers where to add the token.
 */
import { contentRequestOf, filterContentResult, isObject } from '../policy';
import { callUpstream, gatewayId } from '../upstreams';
import { withConversation } from './conversation';
import type { Member } from './members';
import { describedAs, exposedName, originalAmong, splitExposedName } from './naming';
import { type Refusal, refusals, upstreamError } from './refusals';
import { listRefusal, type ToolListOptions } from './tools';
import { upstreamList } from './upstream-lists';

const PROMPTS = { rules: 'prompts', items: 'prompts', by: 'name' } as const;

/** Every prompt this person may use, asked of the upstreams in parallel like the tools. */
export async function listPrompts(members: readonly Member[], options: ToolListOptions): Promise<Record<string, unknown>[]> {
  const lists = await Promise.all(
    members.map(async (member) => {
      if (!member.credential) return [];
      const listed = await upstreamList(member, 'prompts/list', options.email, options.signal, options.sessions);
      if (!listed.ok) {
        options.onLeftOut(member, listed.reason);
        return [];
      }
      const shown = member.rules ? (filterContentResult(member.rules, PROMPTS, { prompts: listed.items }).prompts as unknown[]) : listed.items;
      return shown
        .filter((prompt): prompt is Record<string, unknown> & { name: string } => isObject(prompt) && typeof prompt.name === 'string')
        .map((prompt) => ({ ...prompt, name: exposedName(member.upstream.name, prompt.name), description: describedAs(member.label, prompt.description) }));
    }),
  );
  const seen = new Set<string>();
  return lists.flat().filter((prompt) => !seen.has(prompt.name as string) && seen.add(prompt.name as string));
}

export type PromptOutcome =
  | { ok: true; result: Record<string, unknown>; member: Member; prompt: string }
  | { ok: false; refusal: Refusal & { data?: unknown }; member?: Member };

/** `prompts/get` of the upstream's own prompt behind an exposed name (a 64-character one matched over its list). */
export async function getPrompt(
  members: readonly Member[],
  params: Record<string, unknown>,
  options: Omit<ToolListOptions, 'onLeftOut'>,
): Promise<PromptOutcome> {
  const name = typeof params.name === 'string' ? params.name : '';
  const split = splitExposedName(
    name,
    members.map((m) => m.upstream.name),
  );
  const member = split && members.find((m) => m.upstream.name === split.upstream);
  const unknown = { ok: false, refusal: { ...refusals.unknownTool(name), message: `prompt ${name} is not available through this gateway` } } as const;
  if (!split || !member) return unknown;
  if (!member.credential) return { ok: false, refusal: refusals.noOwnToken(member, options.origin), member };
  let prompt = split.original;
  if (prompt === undefined) {
    const listed = await upstreamList(member, 'prompts/list', options.email, options.signal, options.sessions);
    if (!listed.ok) return { ok: false, refusal: listRefusal(member, listed.reason, options.origin), member };
    const names = listed.items.flatMap((item) => (isObject(item) && typeof item.name === 'string' ? [item.name] : []));
    prompt = originalAmong(member.upstream.name, name, names);
  }
  if (prompt === undefined) return { ...unknown, member };
  const verdict = member.rules ? contentRequestOf(member.rules, { method: 'prompts/get', params: { name: prompt } }) : undefined;
  if (verdict && !verdict.allowed) return { ...unknown, member };

  const forwarded = { name: prompt, ...(isObject(params.arguments) ? { arguments: params.arguments } : {}) };
  const outcome = await withConversation(
    member,
    options.signal,
    (link) => callUpstream(link, { jsonrpc: '2.0', id: gatewayId('prompt'), method: 'prompts/get', params: forwarded }),
    { sessions: options.sessions, stale: (called) => called.outcome === 'response' && called.response.status === 404 },
  );
  if ('refusal' in outcome) return { ok: false, refusal: listRefusal(member, outcome.reason, options.origin), member };
  if (outcome.outcome !== 'response') return { ok: false, refusal: listRefusal(member, outcome.outcome, options.origin), member };
  if (outcome.response.status === 401 || outcome.response.status === 403)
    return { ok: false, refusal: refusals.refusedCredential(member, options.origin), member };
  const answer = outcome.answer;
  if (isObject(answer?.error)) return { ok: false, refusal: upstreamError(member, answer.error), member };
  if (!isObject(answer?.result)) return { ok: false, refusal: refusals.noAnswer(member), member };
  return { ok: true, result: answer.result, member, prompt };
}

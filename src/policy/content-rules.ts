/**
 * Which resources and prompts one person may see and use (issue #19): pure functions over the
 * configured rules and JSON-RPC messages. Resources are judged by URI (a template by its
 * `uriTemplate`), prompts by name, and `completion/complete` by the prompt or resource it completes.
 */
import type { NameRules, ToolRules } from '../config';
import { isObject } from './tool-rules';

/** What a refused request asked for, for its answer and the log line. */
export type ContentKind = 'resource' | 'prompt';

/** A list the policy filters: the array of its result, and the field each item is judged by. */
export interface ContentList {
  rules: 'resources' | 'prompts';
  items: 'resources' | 'resourceTemplates' | 'prompts';
  by: 'uri' | 'uriTemplate' | 'name';
}

const LISTS: Record<string, ContentList> = {
  'resources/list': { rules: 'resources', items: 'resources', by: 'uri' },
  'resources/templates/list': { rules: 'resources', items: 'resourceTemplates', by: 'uriTemplate' },
  'prompts/list': { rules: 'prompts', items: 'prompts', by: 'name' },
};

/** The list a request asks for, when `rules` filter that kind; undefined otherwise. */
export function contentListOf(rules: ToolRules, message: unknown): ContentList | undefined {
  if (!isObject(message) || typeof message.method !== 'string' || !Object.hasOwn(LISTS, message.method)) return undefined;
  const list = LISTS[message.method];
  return list && rules[list.rules] ? list : undefined;
}

/** The list a result is, by its shape (a stream not tied to a request); undefined when none the rules filter. */
export function contentListByShape(rules: ToolRules, result: unknown): ContentList | undefined {
  if (!isObject(result)) return undefined;
  return Object.values(LISTS).find((list) => rules[list.rules] && Array.isArray(result[list.items]));
}

/**
 * A list result without the items the rules hide; every other field unchanged. A result without
 * the array lists nothing the client may use: it becomes empty.
 */
export function filterContentResult(rules: ToolRules, list: ContentList, result: unknown): Record<string, unknown> {
  const fields = isObject(result) ? result : {};
  const items = Array.isArray(fields[list.items]) ? (fields[list.items] as unknown[]) : [];
  const kind = rules[list.rules];
  const judge = list.rules === 'resources' ? isUriAllowed : isNameAllowed;
  const shown = items.filter((item) => isObject(item) && typeof item[list.by] === 'string' && (!kind || judge(kind, item[list.by] as string)));
  return { ...fields, [list.items]: shown };
}

/**
 * The verdict on a request that reads, subscribes to, gets or completes a resource or prompt the
 * rules judge; undefined for every other message. What cannot be read (no URI, no name, an
 * unknown `ref`) is refused.
 */
export function contentRequestOf(rules: ToolRules, message: unknown): { kind: ContentKind; allowed: boolean; name: string | undefined } | undefined {
  if (!isObject(message) || typeof message.method !== 'string') return undefined;
  const params = isObject(message.params) ? message.params : {};
  if (message.method === 'subscriptions/listen') return listenVerdict(rules, params);
  const target = targetOf(message.method, params);
  if (!target) return undefined;
  const kind = target.kind === 'unknown' ? undefined : rules[target.kind === 'resource' ? 'resources' : 'prompts'];
  // A completion of something else is refused only when some rule could have applied.
  if (target.kind === 'unknown') return rules.resources || rules.prompts ? { kind: 'resource', allowed: false, name: undefined } : undefined;
  if (!kind) return undefined;
  const value = target.value;
  const allowed = typeof value === 'string' && (target.kind === 'resource' ? isUriAllowed(kind, value) : isNameAllowed(kind, value));
  return { kind: target.kind, allowed, name: typeof value === 'string' ? printable(value) : undefined };
}

/**
 * MCP 2026-07-28's `subscriptions/listen` replaces `resources/subscribe`: its
 * `notifications.resourceSubscriptions` names resource URIs, and one the rules refuse refuses the
 * whole request (it is not rewritten: the client learns why instead of silently missing updates).
 */
function listenVerdict(rules: ToolRules, params: Record<string, unknown>): ReturnType<typeof contentRequestOf> {
  const uris = isObject(params.notifications) ? params.notifications.resourceSubscriptions : undefined;
  if (!rules.resources || uris === undefined) return undefined;
  const resources = rules.resources;
  const refused = Array.isArray(uris) ? uris.find((uri) => typeof uri !== 'string' || !isUriAllowed(resources, uri)) : uris;
  if (refused === undefined) return { kind: 'resource', allowed: true, name: undefined };
  return { kind: 'resource', allowed: false, name: typeof refused === 'string' ? printable(refused) : undefined };
}

function targetOf(method: string, params: Record<string, unknown>): { kind: ContentKind | 'unknown'; value: unknown } | undefined {
  if (method === 'resources/read' || method === 'resources/subscribe') return { kind: 'resource', value: params.uri };
  if (method === 'prompts/get') return { kind: 'prompt', value: params.name };
  if (method !== 'completion/complete') return undefined;
  const ref = isObject(params.ref) ? params.ref : {};
  if (ref.type === 'ref/prompt') return { kind: 'prompt', value: ref.name };
  if (ref.type === 'ref/resource') return { kind: 'resource', value: ref.uri };
  return { kind: 'unknown', value: undefined };
}

function isNameAllowed(rules: NameRules, name: string): boolean {
  if (rules.allow && !rules.allow.some((pattern) => pattern.test(name))) return false;
  return !rules.deny.some((pattern) => pattern.test(name));
}

/**
 * A URI passes as sent and percent-decoded (an upstream may decode `%73ecret` to `secret`); one
 * that cannot be decoded does not pass.
 */
function isUriAllowed(rules: NameRules, uri: string): boolean {
  let decoded: string;
  try {
    decoded = decodeURIComponent(uri);
  } catch {
    return false;
  }
  return isNameAllowed(rules, uri) && isNameAllowed(rules, decoded);
}

/** URIs and names are client-chosen: only short printable ones go into messages and the log. */
function printable(value: string): string | undefined {
  return /^[\w./:@{}-]{1,100}$/.test(value) ? value : undefined;
}

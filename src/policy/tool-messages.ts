/**
 * The policy over JSON-RPC messages, both ways: which requests of a body (single or batch) go
 * upstream and which the gateway answers itself, and the rewriting of `tools/list` answers (and,
 * issue #19, of resource, template and prompt lists).
 * Pure: the caller supplies the annotations it knows.
 */
import type { ToolRules } from '../config';
import { idKey } from '../lib';
import { ANNOTATIONS_TTL_MS } from './annotations';
import { type ContentKind, type ContentList, contentListByShape, contentListOf, contentRequestOf, filterContentResult } from './content-rules';
import { filterToolsResult, isObject, isToolNameAllowed } from './tool-rules';

/** A refused call that has an id, which the gateway answers (src/proxy/jsonrpc-error.ts's `toolRefused`). */
export interface ToolRefusal {
  id: unknown;
  /** The tool's (resource's, prompt's) name when it is short and printable (a client chose it); undefined otherwise. */
  name: string | undefined;
  /** What was refused: a tool call, or a resource or prompt request (issue #19). */
  kind: 'tool' | ContentKind;
}

export interface ToolRequestPlan {
  /**
   * `unchanged`: send the body the gateway parsed, as its own serialization (src/proxy/message.ts);
   * an array: send these messages as a batch instead; `nothing`: send nothing.
   */
  forward: 'unchanged' | 'nothing' | unknown[];
  /** The calls the gateway answers itself, one per refused call that has an id. */
  refusals: ToolRefusal[];
  /** Keys (`idKey`) of the `tools/list` requests going upstream, whose answers must be filtered. */
  listIds: ReadonlySet<string>;
  /** Keys of the resource, template and prompt list requests whose answers must be filtered. */
  contentListIds: ReadonlyMap<string, ContentList>;
  /** Whether the body was a batch (answers are then an array). */
  batch: boolean;
  /** What at least one refused request was (a tool call first); false: nothing was refused. */
  refused: false | 'tool' | ContentKind;
}

/** Undefined: not known to be read-only or not, so not available under `readOnly`. */
export type ReadOnlyLookup = (name: string) => boolean | undefined;

/** The tool names of `tools/call` requests that pass `allow`/`deny` and need annotations (under `readOnly`). */
export function callsNeedingAnnotations(rules: ToolRules, message: unknown): string[] {
  if (!rules.readOnly) return [];
  const names = messagesOf(message)
    .map(toolCallName)
    .filter((name): name is string => typeof name === 'string' && isToolNameAllowed(rules, name));
  return [...new Set(names)];
}

/** Sorts a request body's messages into forwarded and refused. `message` is the parsed body. */
export function planToolRequest(rules: ToolRules, message: unknown, readOnly: ReadOnlyLookup): ToolRequestPlan {
  const batch = Array.isArray(message);
  const messages = messagesOf(message);
  const kept: unknown[] = [];
  const refusals: ToolRefusal[] = [];
  const listIds = new Set<string>();
  const contentListIds = new Map<string, ContentList>();
  let refused: ToolRequestPlan['refused'] = false;
  const refuse = (item: unknown, kind: ToolRefusal['kind'], name: string | undefined) => {
    if (refused !== 'tool') refused = kind === 'tool' ? 'tool' : refused || kind;
    const id = (item as Record<string, unknown>).id;
    if (id !== undefined) refusals.push({ id, name, kind });
  };

  for (const item of messages) {
    const name = toolCallName(item);
    const content = name === undefined ? contentRequestOf(rules, item) : undefined;
    const list = name === undefined && !content ? contentListOf(rules, item) : undefined;
    if (name !== undefined) {
      const printable = typeof name === 'string' ? printableName(name) : undefined;
      const available = typeof name === 'string' && isToolNameAllowed(rules, name) && (!rules.readOnly || readOnly(name) === true);
      if (!available) {
        refuse(item, 'tool', printable);
        continue;
      }
    } else if (content && !content.allowed) {
      refuse(item, content.kind, content.name);
      continue;
    } else if (list) {
      const key = idKey((item as Record<string, unknown>).id);
      if (key) contentListIds.set(key, list);
    } else if (isObject(item) && item.method === 'tools/list') {
      const key = idKey(item.id);
      if (key) listIds.add(key);
    }
    kept.push(item);
  }

  const forward = !refused ? 'unchanged' : kept.length === 0 ? 'nothing' : batch ? kept : 'unchanged';
  return { forward, refusals, listIds, contentListIds, batch, refused };
}

/**
 * How an answer to rewrite is recognised: by the ids of the `tools/list` requests (and of the
 * resource, template and prompt lists, in `content`), or by its shape (a stream not tied to a request).
 */
export type ListMatch = { ids: ReadonlySet<string>; content?: ReadonlyMap<string, ContentList> } | 'shape';

/**
 * The answer (single or batch) with every `tools/list` result filtered, or undefined when nothing
 * in it is a `tools/list` answer (the caller then passes the original bytes). `seen` gets each
 * unfiltered tools array, so annotations can be cached from the newest list.
 */
export function rewriteListAnswers(rules: ToolRules, answer: unknown, match: ListMatch, seen?: (tools: unknown[]) => void): unknown {
  /** 'tools', the content list it answers, or undefined when the item is not a list to filter. */
  const listOf = (item: unknown): 'tools' | ContentList | undefined => {
    if (!isObject(item) || !('result' in item)) return undefined;
    if (match === 'shape') return isObject(item.result) && Array.isArray(item.result.tools) ? 'tools' : contentListByShape(rules, item.result);
    const key = idKey(item.id);
    if (key === undefined) return undefined;
    return match.ids.has(key) ? 'tools' : match.content?.get(key);
  };
  const isListAnswer = (item: unknown): item is Record<string, unknown> => listOf(item) !== undefined;
  const rewrite = (item: Record<string, unknown>) => {
    const result = isObject(item.result) ? item.result : {};
    const list = listOf(item);
    if (list !== 'tools' && list) return { ...item, result: { ...filterContentResult(rules, list, result), ...privateCacheHint(result.ttlMs) } };
    if (Array.isArray(result.tools)) seen?.(result.tools);
    return { ...item, result: { ...filterToolsResult(rules, result), ...privateCacheHint(result.ttlMs) } };
  };
  if (Array.isArray(answer)) {
    if (!answer.some(isListAnswer)) return undefined;
    return answer.map((item) => (isListAnswer(item) ? rewrite(item) : item));
  }
  return isListAnswer(answer) ? rewrite(answer) : undefined;
}

/**
 * MCP 2026-07-28's cache hint for a list the gateway filtered: judged per person (and per policy),
 * so `private`, never for shared caches; and trusted no longer than the annotations it was judged
 * by, so a shorter `ttlMs` of the upstream stays. Older clients ignore both fields.
 */
function privateCacheHint(ttlMs: unknown): { ttlMs: number; cacheScope: 'private' } {
  const upstream = typeof ttlMs === 'number' && Number.isSafeInteger(ttlMs) && ttlMs >= 0 ? ttlMs : ANNOTATIONS_TTL_MS;
  return { ttlMs: Math.min(upstream, ANNOTATIONS_TTL_MS), cacheScope: 'private' };
}

function messagesOf(message: unknown): unknown[] {
  return Array.isArray(message) ? message : [message];
}

/** The tool name of a `tools/call` request: a string, `null` when it has none, undefined for any other message. */
function toolCallName(message: unknown): string | null | undefined {
  if (!isObject(message) || message.method !== 'tools/call') return undefined;
  const name = isObject(message.params) ? message.params.name : undefined;
  return typeof name === 'string' ? name : null;
}

/** A tool name is client-chosen: only short printable names go into messages and the log. */
function printableName(name: string): string | undefined {
  return /^[\w./:@-]{1,100}$/.test(name) ? name : undefined;
}

/**
 * What the gateway knows of each tool's `readOnlyHint`, from the upstream's own `tools/list`
 * answers: those passing through to clients, and those it fetches itself when a call under
 * `readOnly` names a tool it does not know. Kept in the isolate, per policy (so per upstream), for
 * `ANNOTATIONS_TTL_MS`; the newest list always wins, so a tool that changes its annotations is
 * judged by what the upstream said last.
 */
import type { ToolRules } from '../config';
import { isObject, readOnlyHintOf } from './tool-rules';

/** How long a tool's annotations are trusted without a newer list. */
export const ANNOTATIONS_TTL_MS = 60_000;
/** Bounds the names one policy's cache holds, whatever an upstream lists. */
const MAX_TOOLS = 5_000;

interface Known {
  readOnly: boolean | undefined;
  at: number;
}

interface Cache {
  tools: Map<string, Known>;
  /** When a complete list (every page) was last fetched: a name missing from it is not a tool. */
  completeAt: number;
}

const caches = new WeakMap<ToolRules, Cache>();

function cacheFor(rules: ToolRules): Cache {
  let cache = caches.get(rules);
  if (!cache) caches.set(rules, (cache = { tools: new Map(), completeAt: Number.NEGATIVE_INFINITY }));
  return cache;
}

/** Records the tools of one list page (or, with `complete`, of every page). */
export function rememberTools(rules: ToolRules, tools: readonly unknown[], options: { complete?: boolean; now?: number } = {}): void {
  const now = options.now ?? Date.now();
  const cache = cacheFor(rules);
  if (options.complete) cache.tools.clear();
  for (const tool of tools) {
    if (!isObject(tool) || typeof tool.name !== 'string') continue;
    cache.tools.delete(tool.name); // re-inserted last: the oldest entries go first when full
    cache.tools.set(tool.name, { readOnly: readOnlyHintOf(tool), at: now });
    if (cache.tools.size > MAX_TOOLS) cache.tools.delete(cache.tools.keys().next().value as string);
  }
  if (options.complete) cache.completeAt = now;
}

/**
 * `{ readOnly }` when fresh knowledge exists (`readOnly` undefined: the tool has no hint, or is not
 * on the upstream's list), undefined when the upstream must be asked.
 */
export function knownReadOnly(rules: ToolRules, name: string, now = Date.now()): { readOnly: boolean | undefined } | undefined {
  const cache = cacheFor(rules);
  const known = cache.tools.get(name);
  if (known && now - known.at < ANNOTATIONS_TTL_MS) return { readOnly: known.readOnly };
  if (!known && now - cache.completeAt < ANNOTATIONS_TTL_MS) return { readOnly: undefined };
  return undefined;
}

/** Forgets everything (the upstream said its list changed). */
export function forgetTools(rules: ToolRules): void {
  caches.delete(rules);
}

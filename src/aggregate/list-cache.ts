/**
 * Each upstream's tool (and prompt) list, per person, kept a short while in the isolate: an aggregate's
 * `tools/list` (and a call that needs the list to route or to check `readOnly`) then costs no
 * upstream request. The list is the upstream's own, unfiltered: the person's policy is applied
 * each time it is read, so a policy can never be served from someone else's entry. Keyed by
 * upstream (name and URL) and email because the list is what that person's credential saw.
 *
 * The upstream's `ttlMs` is honoured, 0 included: a 2026-07-28 server that names none of its own
 * (the v2 SDK's default says `ttlMs: 0`) is asked on every list. `cacheScope` does not narrow it
 * further: the gateway is the upstream's client for this one person, so even a `private` list is
 * the requesting client's to keep.
 */
import type { UpstreamConfig } from '../config';

/** How long a list is kept; shorter when the upstream's 2026-07-28 result names a smaller `ttlMs`. */
export const LIST_TTL_MS = 60_000;
/** Entries per isolate; the oldest goes first. */
const MAX_ENTRIES = 1_000;

/** The lists kept: tools, prompts, resources and resource templates. */
export type ListKind = 'tools/list' | 'prompts/list' | 'resources/list' | 'resources/templates/list';

const lists = new Map<string, { items: readonly unknown[]; until: number }>();

const keyOf = (kind: ListKind, upstream: UpstreamConfig, email: string) => `${kind}\n${upstream.name}\n${upstream.url.href}\n${email}`;

/** The list kept for this person, if still fresh. */
export function cachedList(kind: ListKind, upstream: UpstreamConfig, email: string, now = Date.now()): readonly unknown[] | undefined {
  const key = keyOf(kind, upstream, email);
  const entry = lists.get(key);
  if (!entry) return undefined;
  if (entry.until <= now) {
    lists.delete(key);
    return undefined;
  }
  return entry.items;
}

/** Keeps a list for `min(LIST_TTL_MS, ttlMs)`; a `ttlMs` of 0 keeps nothing. */
export function keepList(
  kind: ListKind,
  upstream: UpstreamConfig,
  email: string,
  items: readonly unknown[],
  ttlMs: number | undefined,
  now = Date.now(),
): void {
  const key = keyOf(kind, upstream, email);
  lists.delete(key);
  const lifetime = Math.min(LIST_TTL_MS, ttlMs ?? LIST_TTL_MS);
  if (lifetime <= 0) return;
  while (lists.size >= MAX_ENTRIES) lists.delete(lists.keys().next().value as string);
  lists.set(key, { items, until: now + lifetime });
}

/** Drops a person's list (the upstream said it changed). */
export function forgetList(kind: ListKind, upstream: UpstreamConfig, email: string): void {
  lists.delete(keyOf(kind, upstream, email));
}

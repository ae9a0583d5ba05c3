/**
 * How an aggregate names what its upstreams offer: `<upstream>_<tool>` (prompts likewise). Upstream
 * names match `^[a-z0-9-]{1,32}$` (src/config/upstreams.ts) and so hold no `_`: the first `_` of an
 * exposed name always ends the upstream's name, whatever the tool's own name holds.
 *
 * Pure functions; no Workers-only import.
 */

/** The longest tool name Claude's API accepts (`^[a-zA-Z0-9_-]{1,64}$`). */
export const MAX_EXPOSED_NAME = 64;
/** `_` and 8 hex digits of the full name's hash, at the end of a shortened name. */
const SUFFIX_LENGTH = 9;

/**
 * The name an upstream's tool (or prompt) is exposed under: `<upstream>_<name>`, or, when that
 * is over 64 characters, its first 55 characters, `_` and 8 hex digits of a hash of the whole:
 * stable across requests and isolates, and still starting `<upstream>_` (an upstream name is at
 * most 32 characters), so it still routes to its upstream.
 */
export function exposedName(upstream: string, name: string): string {
  const full = `${upstream}_${name}`;
  if (full.length <= MAX_EXPOSED_NAME) return full;
  return `${full.slice(0, MAX_EXPOSED_NAME - SUFFIX_LENGTH)}_${fnv1a32(full)}`;
}

/**
 * Which upstream an exposed name belongs to, and the upstream's own name when the exposed one
 * says it whole. `original` is undefined for a name that may have been shortened (exactly 64
 * characters): only the upstream's list can say which of its names it stands for
 * (`originalAmong`). Undefined when the name holds no `_` or names no upstream of `upstreams`.
 */
export function splitExposedName(exposed: string, upstreams: readonly string[]): { upstream: string; original: string | undefined } | undefined {
  const at = exposed.indexOf('_');
  if (at <= 0) return undefined;
  const upstream = exposed.slice(0, at);
  if (!upstreams.includes(upstream)) return undefined;
  return { upstream, original: exposed.length < MAX_EXPOSED_NAME ? exposed.slice(at + 1) : undefined };
}

/**
 * The upstream's own name behind a 64-character exposed name: recomputed over the names of that
 * upstream's list (a shortened name cannot be reversed, only matched), so routing needs the list
 * the client saw, or a fresh one. Undefined when no name of the list is exposed as it.
 */
export function originalAmong(upstream: string, exposed: string, names: Iterable<string>): string | undefined {
  for (const name of names) if (exposedName(upstream, name) === exposed) return name;
  return undefined;
}

/** What a description starts with, so a person sees which upstream a tool belongs to: `[GitHub] `. */
export function describedAs(label: string, description: unknown): string {
  return typeof description === 'string' && description.length > 0 ? `[${label}] ${description}` : `[${label}]`;
}

/** FNV-1a, 32 bits, as 8 hex digits: a stable, well-spread suffix, not a secret (collisions are checked where names are listed). */
function fnv1a32(text: string): string {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

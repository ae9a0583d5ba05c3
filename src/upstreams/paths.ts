/**
 * The configured upstreams by name and by gateway path: `/mcp` is the single upstream,
 * `/<name>/mcp` a named one.
 */
import type { Config, UpstreamConfig } from '../config';

/** RFC 9728's metadata root; each upstream's document lives under it at its own path. */
export const PROTECTED_RESOURCE_ROOT = '/.well-known/oauth-protected-resource';

/**
 * The upstream a path belongs to: `/mcp…` is the single upstream, `/<name>/mcp…` a named one,
 * and so are their RFC 9728 metadata paths under `/.well-known/oauth-protected-resource`.
 * Pure: whether that upstream is configured is the caller's question.
 */
export function upstreamNameFor(pathname: string): string | undefined {
  const path = pathname.startsWith(`${PROTECTED_RESOURCE_ROOT}/`) ? pathname.slice(PROTECTED_RESOURCE_ROOT.length) : pathname;
  const [, first, second] = path.split('/', 3);
  if (first === 'mcp') return 'mcp';
  return second === 'mcp' ? first : undefined;
}

/** The configured upstream of this name (`mcp` for the single one), if any. */
export function upstreamNamed(config: Config, name: string): UpstreamConfig | undefined {
  return config.upstreams.find((upstream) => upstream.name === name);
}

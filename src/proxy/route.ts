/**
 * Gateway URL <-> upstream URL. An upstream's gateway path (its `mount`: `/mcp`, `/<name>/mcp`) is
 * its URL exactly and `<mount>/<rest>` is its URL followed by `/<rest>`; nothing a client sends
 * may leave the upstream's base path.
 */

/**
 * First segment under an upstream's gateway path reserved for signed legacy HTTP+SSE message endpoints (see
 * legacy-sse/endpoint-seal.ts). An upstream path segment of exactly this name is therefore not reachable.
 */
export const SIGNED_ENDPOINT_SEGMENT = '.endpoint';

export type UpstreamRoute =
  | { kind: 'mapped'; target: URL }
  /** A signed upstream path; the signature is checked (asynchronously) before it is used. */
  | { kind: 'signed'; token: string; search: string }
  | { kind: 'refused' };

/** Maps a gateway request URL under `mount` onto the upstream at `base`, or refuses it (answered 400). */
export function routeToUpstream(gateway: URL, mount: string, base: URL): UpstreamRoute {
  const { pathname } = gateway;
  if (pathname === mount) {
    return { kind: 'mapped', target: new URL(`${base.origin}${base.pathname}${mergeQuery(base, gateway.search)}`) };
  }
  if (!pathname.startsWith(`${mount}/`)) return { kind: 'refused' };

  const rest = pathname.slice(mount.length + 1);
  const segments = rest.split('/');
  if (!segments.every((segment, i) => isSafeSegment(segment, i === segments.length - 1))) return { kind: 'refused' };
  if (segments[0] === SIGNED_ENDPOINT_SEGMENT) {
    return segments.length === 2 && segments[1] ? { kind: 'signed', token: segments[1], search: gateway.search } : { kind: 'refused' };
  }

  const target = new URL(`${base.origin}${trimSlash(base.pathname)}/${rest}${mergeQuery(base, gateway.search)}`);
  // Defence in depth: the segments are safe, so re-parsing must not have moved the target.
  return isUnderBase(target, base) ? { kind: 'mapped', target } : { kind: 'refused' };
}

/**
 * The gateway path (with query) that routes back to this upstream URL, or undefined when none does:
 * another origin, or outside the base path. Used for redirects.
 */
export function gatewayPathFor(upstream: URL, mount: string, base: URL): string | undefined {
  if (upstream.origin !== base.origin) return undefined;
  if (upstream.pathname === base.pathname) return `${mount}${upstream.search}`;
  if (!isUnderBase(upstream, base)) return undefined;
  const rest = upstream.pathname.slice(trimSlash(base.pathname).length + 1);
  const segments = rest.split('/');
  if (segments[0] === SIGNED_ENDPOINT_SEGMENT) return undefined;
  if (!segments.every((segment, i) => isSafeSegment(segment, i === segments.length - 1))) return undefined;
  return `${mount}/${rest}${upstream.search}`;
}

function isUnderBase(url: URL, base: URL): boolean {
  return url.origin === base.origin && (url.pathname === base.pathname || url.pathname.startsWith(`${trimSlash(base.pathname)}/`));
}

function trimSlash(path: string): string {
  return path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * One path segment as the URL parser left it (dot segments, even `%2e%2e`, are already resolved).
 * What remains dangerous is what an upstream might decode or trim into a separator or a dot
 * segment: encoded `/` or `\`, a double-encoded escape, control characters (`%00`, `%09`: some
 * servers cut or trim there), empty segments (`//host`), and `;`, after which Tomcat, Spring and
 * some proxies drop the rest of the segment as "path parameters" (`..;` then climbs out). Only
 * the last segment may be empty, for a trailing slash. Checked on the NFKC form too, since
 * servers that fold Unicode turn `．` (U+FF0E), `；` or `／` into their ASCII twins.
 */
function isSafeSegment(segment: string, last: boolean): boolean {
  if (segment === '') return last;
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    // Also IIS's `%u002e`: not a valid escape here, so refused rather than guessed at.
    return false;
  }
  return isSafeText(decoded) && isSafeText(decoded.normalize('NFKC'));
}

function isSafeText(text: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[/\\;\x00-\x1f\x7f]|%[0-9a-f]{2}/i.test(text)) return false;
  // Nothing but dots and spaces: Windows and IIS trim trailing dots and spaces, so `...` or `.. `
  // is `..` (or empty) to them, whatever the URL parser made of it.
  return !/^[.\s]+$/u.test(text);
}

/**
 * The client's query string, verbatim; when UPSTREAM_URL has its own query, its parameters stay
 * and win, so a client cannot override what the operator fixed there (e.g. a read-only flag).
 */
function mergeQuery(base: URL, clientSearch: string): string {
  if (!base.search) return clientSearch;
  const params = new URLSearchParams(base.search);
  const fixed = new Set(params.keys());
  for (const [name, value] of new URLSearchParams(clientSearch)) {
    if (!fixed.has(name)) params.append(name, value);
  }
  return `?${params}`;
}

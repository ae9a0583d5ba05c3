/**
 * Header allow-lists in both directions. Allow-lists rather than deny-lists: the client's bearer
 * token, cookies, Cloudflare's identity headers (Cf-Access-*, Cf-Connecting-Ip, X-Forwarded-For)
 * and anything added later must never reach the upstream, and the upstream's cookies, challenges
 * and infrastructure headers must never reach the client.
 */
import type { UpstreamConfig } from '../config';

/**
 * What Streamable HTTP (2025-03-26 to 2026-07-28) and HTTP+SSE need, plus User-Agent, which some
 * upstreams and their WAFs require. Deliberately absent: Origin (an upstream that validates it
 * against DNS rebinding would refuse a browser client's origin; server-to-server calls carry
 * none), Accept-Encoding (the runtime negotiates with the upstream itself), Content-Length and
 * hop-by-hop headers (the runtime sets them for the body it actually sends), and Mcp-Session-Id
 * (the client holds a handle bound to the person; session-binding.ts sends the upstream's own id).
 */
const REQUEST_HEADERS = ['accept', 'content-type', 'last-event-id', 'mcp-method', 'mcp-name', 'mcp-protocol-version', 'user-agent'] as const;

/**
 * What an MCP client reads. Deliberately absent: Set-Cookie and WWW-Authenticate (the upstream's
 * session and challenge are not the client's business; a passed challenge would send clients back
 * into OAuth), Location (rewritten or refused in handler.ts), Access-Control-* (ours, not the
 * upstream's), Content-Encoding/Content-Length (the runtime decodes and re-frames the body),
 * Server and the like (they describe the upstream's infrastructure).
 */
const RESPONSE_HEADERS = ['allow', 'cache-control', 'content-type', 'mcp-protocol-version', 'mcp-session-id', 'retry-after'] as const;

/** Headers a browser client may read; the provider's CORS wrapper adds WWW-Authenticate and Retry-After too. */
const EXPOSED_HEADERS = 'Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate';
/** Request headers a browser client may send (preflight). */
const ALLOWED_HEADERS = 'Authorization, Content-Type, Accept, Last-Event-ID, Mcp-Method, Mcp-Name, Mcp-Protocol-Version, Mcp-Session-Id';
export const ALLOWED_METHODS = 'GET, POST, DELETE, OPTIONS';

/** The headers sent upstream: the allow-listed client headers, UPSTREAM_HEADERS, then the credential. */
export function upstreamRequestHeaders(client: Headers, upstream: UpstreamConfig, credential: readonly [string, string]): Headers {
  const headers = new Headers();
  for (const name of REQUEST_HEADERS) {
    const value = client.get(name);
    if (value !== null) headers.set(name, value);
  }
  // Set after the client's so neither the client nor UPSTREAM_HEADERS can replace the credential.
  for (const [name, value] of upstream.headers) headers.set(name, value);
  headers.set(credential[0], credential[1]);
  return headers;
}

/** The upstream response headers the client gets, plus CORS for a browser `origin`. */
export function clientResponseHeaders(upstream: Headers, origin: string | null): Headers {
  const headers = new Headers();
  for (const name of RESPONSE_HEADERS) {
    const value = upstream.get(name);
    if (value !== null) headers.set(name, value);
  }
  return withCors(headers, origin);
}

/**
 * CORS for a browser client (MCP Inspector). Bearer tokens are not ambient credentials, so any
 * origin may be reflected, as the provider's wrapper does; setting it here keeps the proxy correct
 * on its own, and the wrapper keeps what is already set.
 */
export function withCors(headers: Headers, origin: string | null): Headers {
  if (origin) {
    headers.set('Access-Control-Allow-Origin', origin);
    headers.set('Access-Control-Expose-Headers', EXPOSED_HEADERS);
    headers.append('Vary', 'Origin');
  }
  return headers;
}

/** The answer to a CORS preflight, should one reach the proxy (the provider normally answers first). */
export function preflightResponse(origin: string | null): Response {
  const headers = withCors(new Headers({ Allow: ALLOWED_METHODS }), origin);
  if (origin) {
    headers.set('Access-Control-Allow-Methods', ALLOWED_METHODS);
    headers.set('Access-Control-Allow-Headers', ALLOWED_HEADERS);
    headers.set('Access-Control-Max-Age', '86400');
  }
  return new Response(null, { status: 204, headers });
}

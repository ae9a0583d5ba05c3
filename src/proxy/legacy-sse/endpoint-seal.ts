/**
 * The HTTP+SSE transport (MCP 2024-11-05): the client GETs an event stream whose `endpoint` event
 * names the URL to POST messages to. Through the gateway that URL must lead back to the gateway.
 *
 * Design: only an endpoint on the upstream's own origin is accepted, and it is announced sealed:
 * `<gateway path>/.endpoint/v1.<iv>.<AES-256-GCM(path and query)>` (src/lib/seal.ts), keyed by
 * HKDF from COOKIE_ENCRYPTION_KEY with a purpose of its own, the upstream and the person's email
 * bound in as additional data. So only paths the upstream itself announced are reachable (mapping arbitrary
 * upstream paths would let any token holder reach any upstream path with the gateway's credential),
 * and, since issue #16, only by the person it was announced to: the query carries the upstream's
 * session id (`/message?sessionId=…`), which another person must neither use nor learn. That holds
 * for an endpoint under UPSTREAM_URL's path as well, which an ordinary `<gateway path>/<rest>` URL
 * would show. An endpoint on another origin ends the stream: the client must never learn or be sent
 * to another host.
 */
import type { Config, UpstreamConfig } from '../../config';
import { openSealed, sealText } from '../../lib';
import { SIGNED_ENDPOINT_SEGMENT } from '../route';

const encoder = new TextEncoder();
// v3: sealed in src/lib/seal.ts's format since issue #17.
const HKDF_INFO = 'mcp-oauth-gateway legacy-sse endpoint v3';

/** The gateway URL to announce to `email` for an upstream's `endpoint` event data, or undefined to refuse it. */
export async function gatewayEndpointFor(
  data: string,
  upstreamStream: URL,
  upstream: UpstreamConfig,
  config: Config,
  email: string,
): Promise<string | undefined> {
  const announced = URL.canParse(data, upstreamStream.href) ? new URL(data, upstreamStream) : undefined;
  if (!announced || announced.origin !== upstream.url.origin) return undefined;
  const token = await sealText(config.cookieSecret, HKDF_INFO, binding(upstream, email), `${announced.pathname}${announced.search}`);
  return `${upstream.path}/${SIGNED_ENDPOINT_SEGMENT}/${token}`;
}

/**
 * The upstream URL a sealed endpoint token leads to, or undefined if the token is not one the
 * gateway announced to `email` for this upstream. `search` is the request's own query: the
 * announced URL has none, so one added to it is refused rather than passed on.
 */
export async function upstreamUrlForSignedEndpoint(
  token: string,
  search: string,
  upstream: UpstreamConfig,
  config: Config,
  email: string,
): Promise<URL | undefined> {
  if (search !== '') return undefined;
  // Undefined when altered, sealed for someone else or another upstream, or under another key.
  const pathAndQuery = await openSealed(config.cookieSecret, HKDF_INFO, binding(upstream, email), token);
  if (pathAndQuery === undefined) return undefined;
  const base = upstream.url;
  const target = URL.canParse(`${base.origin}${pathAndQuery}`) ? new URL(`${base.origin}${pathAndQuery}`) : undefined;
  return target && target.origin === base.origin && `${target.pathname}${target.search}` === pathAndQuery ? target : undefined;
}

/**
 * Whom a sealed endpoint is for: the person, and the upstream by name, gateway path and origin, so
 * an endpoint announced for one upstream opens nothing on another (even one on the same origin).
 * JSON keeps the parts apart whatever characters they hold.
 */
function binding(upstream: UpstreamConfig, email: string): Uint8Array {
  return encoder.encode(JSON.stringify(['mcp-oauth-gateway legacy-sse endpoint', upstream.name, upstream.path, upstream.url.origin, email.toLowerCase()]));
}

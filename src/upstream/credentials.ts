import type { UpstreamConfig } from '../config';

/** The upstream credential for this user: their own from USER_TOKENS, else UPSTREAM_TOKEN. */
export function upstreamTokenFor(upstream: UpstreamConfig, email: string): string | undefined {
  return upstream.userTokens.get(email.toLowerCase()) ?? upstream.token;
}

/**
 * The header that carries this user's upstream credential, e.g. `Authorization: Bearer <PAT>`,
 * `Authorization: token <PAT>` or `X-API-Key: <key>`; undefined when the user has none.
 * Looked up per request, so a rotated secret takes effect at once.
 */
export function upstreamAuthHeader(upstream: UpstreamConfig, email: string): readonly [name: string, value: string] | undefined {
  const token = upstreamTokenFor(upstream, email);
  if (token === undefined) return undefined;
  return [upstream.authHeader, upstream.authScheme ? `${upstream.authScheme} ${token}` : token];
}

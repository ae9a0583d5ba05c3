import type { UpstreamConfig } from '../config';

/** The upstream credential for this user: their own from USER_TOKENS, else UPSTREAM_TOKEN. */
export function upstreamTokenFor(upstream: UpstreamConfig, email: string): string | undefined {
  return upstream.userTokens.get(email.toLowerCase()) ?? upstream.token;
}

import type { UpstreamConfig } from '../config';
import type { TokenVault } from '../vault/store';

/** The configured credential for this user: their own from USER_TOKENS / userTokens, else the shared token. */
export function upstreamTokenFor(upstream: UpstreamConfig, email: string): string | undefined {
  return upstream.userTokens.get(email.toLowerCase()) ?? upstream.token;
}

/** The header that carries a credential, e.g. `Authorization: Bearer <PAT>`, `Authorization: token <PAT>` or `X-API-Key: <key>`. */
export function authHeaderFor(upstream: UpstreamConfig, token: string): readonly [name: string, value: string] {
  return [upstream.authHeader, upstream.authScheme ? `${upstream.authScheme} ${token}` : token];
}

/** The configured credential's header; undefined when the user has none. */
export function upstreamAuthHeader(upstream: UpstreamConfig, email: string): readonly [name: string, value: string] | undefined {
  const token = upstreamTokenFor(upstream, email);
  return token === undefined ? undefined : authHeaderFor(upstream, token);
}

export interface UpstreamCredential {
  header: readonly [name: string, value: string];
  /** The token alone, as it stands in the header's value. */
  token: string;
  /** The person's own token, which they pasted: they, not the operator, can replace it. */
  own: boolean;
}

/**
 * This user's credential for this upstream, looked up per request so a rotated secret or a
 * replaced token takes effect at once: their own stored token on a `userSupplied` upstream, else
 * the configured one; undefined when they have none.
 */
export async function upstreamCredential(upstream: UpstreamConfig, email: string, vault: TokenVault | undefined): Promise<UpstreamCredential | undefined> {
  if (upstream.userSupplied && vault) {
    const stored = await vault.read(email, upstream.name);
    if (stored) return { header: authHeaderFor(upstream, stored.token), token: stored.token, own: true };
  }
  const token = upstreamTokenFor(upstream, email);
  return token === undefined ? undefined : { header: authHeaderFor(upstream, token), token, own: false };
}

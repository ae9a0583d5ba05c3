/**
 * Whose credential goes upstream for one person, and the header that carries it. Looked up per
 * request, so a rotated secret or a replaced token takes effect at once.
 */
import type { UpstreamConfig } from '../config';
import type { TokenVault } from '../vault';

/**
 * Where a person's credential comes from: the upstream's one `shared` token, their entry in the
 * operator's `per-person` map (USER_TOKENS / userTokens), or their `own`, which they pasted and
 * can replace. Upstream OAuth is the next kind (`oauth`).
 */
export type CredentialKind = 'shared' | 'per-person' | 'own';

export interface UpstreamCredential {
  kind: CredentialKind;
  header: readonly [name: string, value: string];
  /** The token alone, as it stands in the header's value. */
  token: string;
}

/** Whether people bring their own token for this upstream (`userSupplied`): asked for at login, kept in the vault. */
export function takesOwnTokens(upstream: UpstreamConfig): boolean {
  return upstream.userSupplied;
}

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

/**
 * This user's credential for this upstream: their own stored token on a `userSupplied` upstream,
 * else the configured one; undefined when they have none.
 */
export async function upstreamCredential(upstream: UpstreamConfig, email: string, vault: TokenVault | undefined): Promise<UpstreamCredential | undefined> {
  if (takesOwnTokens(upstream) && vault) {
    const stored = await vault.read(email, upstream.name);
    if (stored) return { kind: 'own', header: authHeaderFor(upstream, stored.token), token: stored.token };
  }
  const personal = upstream.userTokens.get(email.toLowerCase());
  const token = personal ?? upstream.token;
  if (token === undefined) return undefined;
  return { kind: personal === undefined ? 'shared' : 'per-person', header: authHeaderFor(upstream, token), token };
}

/**
 * People's own upstream tokens at rest: AES-256-GCM (lib/seal.ts) under a key derived with
 * HKDF-SHA-256 from TOKEN_ENCRYPTION_KEY, the person's email and the upstream's name as additional
 * authenticated data. A sealed token opens only for the same person and upstream: an entry copied
 * to another person's or upstream's key name fails to decrypt. Crypto only: no storage, no HTTP.
 */
import { openSealed, sealText } from '../lib';

/** Whose token it is: bound into every ciphertext. */
export interface TokenBinding {
  email: string;
  upstream: string;
}

const HKDF_INFO = 'mcp-oauth-gateway user-token v1';

/** JSON keeps the two parts apart whatever characters they hold. */
function additionalData({ email, upstream }: TokenBinding): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(['mcp-oauth-gateway user-token', email, upstream]));
}

/** `v1.<iv>.<ciphertext>`, base64url. `iv` is for known-answer tests only: never pass one otherwise. */
export function sealToken(secret: string, binding: TokenBinding, token: string, iv?: Uint8Array): Promise<string> {
  return sealText(secret, HKDF_INFO, additionalData(binding), token, iv);
}

/**
 * The token, and which of `secrets` opened it (0: the current key), or undefined when none does:
 * another key, another person or upstream, or tampered bytes.
 */
export async function openToken(secrets: readonly string[], binding: TokenBinding, sealed: string): Promise<{ token: string; keyIndex: number } | undefined> {
  for (const [keyIndex, secret] of secrets.entries()) {
    const token = await openSealed(secret, HKDF_INFO, additionalData(binding), sealed);
    if (token !== undefined) return { token, keyIndex };
  }
  return undefined;
}

/**
 * People's own upstream tokens at rest: AES-256-GCM under a key derived with HKDF-SHA-256 from
 * TOKEN_ENCRYPTION_KEY, the person's email and the upstream's name as additional authenticated
 * data. A sealed token opens only for the same person and upstream: an entry copied to another
 * person's or upstream's key name fails to decrypt. Crypto only: no storage, no HTTP.
 */
import { base64url, fromBase64url } from '../lib/base64url';
import { derivedKey } from '../lib/keys';

/** Whose token it is: bound into every ciphertext. */
export interface TokenBinding {
  email: string;
  upstream: string;
}

const VERSION = 'v1';
const HKDF_INFO = 'mcp-oauth-gateway user-token v1';
const IV_BYTES = 12;
function keyFor(secret: string): Promise<CryptoKey> {
  return derivedKey(secret, HKDF_INFO, { name: 'AES-GCM', length: 256 }, ['encrypt', 'decrypt']);
}

/** JSON keeps the two parts apart whatever characters they hold. */
function additionalData({ email, upstream }: TokenBinding): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(['mcp-oauth-gateway user-token', email, upstream]));
}

/** `v1.<iv>.<ciphertext>`, base64url. `iv` is for known-answer tests only: never pass one otherwise. */
export async function sealToken(
  secret: string,
  binding: TokenBinding,
  token: string,
  iv: Uint8Array = crypto.getRandomValues(new Uint8Array(IV_BYTES)),
): Promise<string> {
  const sealed = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv, additionalData: additionalData(binding) },
    await keyFor(secret),
    new TextEncoder().encode(token),
  );
  return `${VERSION}.${base64url(iv)}.${base64url(sealed)}`;
}

/**
 * The token, and which of `secrets` opened it (0: the current key), or undefined when none does:
 * another key, another person or upstream, or tampered bytes.
 */
export async function openToken(secrets: readonly string[], binding: TokenBinding, sealed: string): Promise<{ token: string; keyIndex: number } | undefined> {
  const [version, ivText, dataText, ...rest] = sealed.split('.');
  const iv = fromBase64url(ivText ?? '');
  const data = fromBase64url(dataText ?? '');
  if (version !== VERSION || rest.length > 0 || !iv || iv.length !== IV_BYTES || !data) return undefined;
  for (const [keyIndex, secret] of secrets.entries()) {
    try {
      const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: additionalData(binding) }, await keyFor(secret), data);
      return { token: new TextDecoder().decode(plain), keyIndex };
    } catch {
      // Not this key (or not this binding): try the next.
    }
  }
  return undefined;
}

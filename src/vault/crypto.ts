/**
 * People's own upstream tokens at rest: AES-256-GCM under a key derived with HKDF-SHA-256 from
 * TOKEN_ENCRYPTION_KEY, the person's email and the upstream's name as additional authenticated
 * data. A sealed token opens only for the same person and upstream: an entry copied to another
 * person's or upstream's key name fails to decrypt. Crypto only: no storage, no HTTP.
 */
import { base64url, fromBase64url } from '../lib/base64url';

/** Whose token it is: bound into every ciphertext. */
export interface TokenBinding {
  email: string;
  upstream: string;
}

const VERSION = 'v1';
const HKDF_INFO = new TextEncoder().encode('mcp-oauth-gateway user-token v1');
const IV_BYTES = 12;
const keys = new Map<string, Promise<CryptoKey>>();

function keyFor(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle
      .importKey('raw', new TextEncoder().encode(secret), 'HKDF', false, ['deriveKey'])
      .then((material) =>
        crypto.subtle.deriveKey(
          { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: HKDF_INFO },
          material,
          { name: 'AES-GCM', length: 256 },
          false,
          ['encrypt', 'decrypt'],
        ),
      );
    // A deployment has one or two secrets; the bound only guards against misuse.
    if (keys.size >= 8) keys.clear();
    keys.set(secret, key);
  }
  return key;
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

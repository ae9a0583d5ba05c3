/**
 * Keys derived with HKDF-SHA-256 from a deployment secret, one per purpose (`info`), so what is
 * signed or sealed for one purpose never verifies or opens for another; and the small primitives
 * that go with them.
 */
import { base64url, fromBase64url } from './base64url';

const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

/** The key for `info`, derived once per isolate. */
export function derivedKey(
  secret: string,
  info: string,
  algorithm: Parameters<SubtleCrypto['deriveKey']>[2],
  usages: Parameters<SubtleCrypto['deriveKey']>[4],
): Promise<CryptoKey> {
  const id = `${info}\n${secret}`;
  let key = keys.get(id);
  if (!key) {
    key = crypto.subtle
      .importKey('raw', encoder.encode(secret), 'HKDF', false, ['deriveKey'])
      .then((material) =>
        crypto.subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: encoder.encode(info) }, material, algorithm, false, usages),
      );
    // A deployment has a handful of secrets and purposes; the bound only guards against misuse.
    if (keys.size >= 16) keys.clear();
    keys.set(id, key);
  }
  return key;
}

/** An HMAC-SHA-256 key for `info`. */
export function hmacKey(secret: string, info: string): Promise<CryptoKey> {
  return derivedKey(secret, info, { name: 'HMAC', hash: 'SHA-256', length: 256 }, ['sign', 'verify']);
}

export async function sign(key: CryptoKey, text: string): Promise<string> {
  return base64url(await crypto.subtle.sign('HMAC', key, encoder.encode(text)));
}

/** Constant-time, through crypto.subtle.verify. */
export async function verify(key: CryptoKey, text: string, signature: string): Promise<boolean> {
  const bytes = fromBase64url(signature);
  return bytes !== undefined && crypto.subtle.verify('HMAC', key, bytes, encoder.encode(text));
}

export async function sha256(text: string): Promise<string> {
  return base64url(await crypto.subtle.digest('SHA-256', encoder.encode(text)));
}

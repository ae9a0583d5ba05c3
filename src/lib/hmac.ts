/**
 * HMAC-SHA-256 keys derived with HKDF from a deployment secret, one per purpose (`info`), so a
 * value signed for one purpose never verifies for another.
 */
import { base64url, fromBase64url } from './base64url';

const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

export function hmacKey(secret: string, info: string): Promise<CryptoKey> {
  const id = `${info}\n${secret}`;
  let key = keys.get(id);
  if (!key) {
    key = crypto.subtle
      .importKey('raw', encoder.encode(secret), 'HKDF', false, ['deriveKey'])
      .then((material) =>
        crypto.subtle.deriveKey(
          { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: encoder.encode(info) },
          material,
          { name: 'HMAC', hash: 'SHA-256', length: 256 },
          false,
          ['sign', 'verify'],
        ),
      );
    if (keys.size >= 16) keys.clear();
    keys.set(id, key);
  }
  return key;
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

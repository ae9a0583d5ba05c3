/**
 * AES-256-GCM, encrypted and authenticated, under a key derived with HKDF from a deployment
 * secret and a purpose (`info`), so a value sealed for one purpose never opens for another.
 * `additionalData` binds a sealed value to what it belongs to (a person, an upstream, a cookie):
 * the same bytes fail to open anywhere else. Format: `v1.<iv>.<ciphertext>`, base64url.
 */
import { base64url, fromBase64url } from './base64url';
import { derivedKey } from './keys';

const VERSION = 'v1';
const IV_BYTES = 12;

/** Seals `text`. `iv` is for known-answer tests only: never pass one otherwise. */
export async function sealText(
  secret: string,
  info: string,
  additionalData: Uint8Array,
  text: string,
  iv: Uint8Array = crypto.getRandomValues(new Uint8Array(IV_BYTES)),
): Promise<string> {
  const sealed = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData }, await aesKey(secret, info), new TextEncoder().encode(text));
  return `${VERSION}.${base64url(iv)}.${base64url(sealed)}`;
}

/** The text, or undefined: not sealed under this secret, purpose and data, or tampered with. */
export async function openSealed(secret: string, info: string, additionalData: Uint8Array, sealed: string): Promise<string | undefined> {
  const [version, ivText, dataText, ...rest] = sealed.split('.');
  const iv = fromBase64url(ivText ?? '');
  const data = fromBase64url(dataText ?? '');
  if (version !== VERSION || rest.length > 0 || !iv || iv.length !== IV_BYTES || !data) return undefined;
  try {
    return new TextDecoder().decode(await crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData }, await aesKey(secret, info), data));
  } catch {
    // AES-GCM's tag did not verify: another key, other additional data, or altered bytes.
    return undefined;
  }
}

function aesKey(secret: string, info: string): Promise<CryptoKey> {
  return derivedKey(secret, info, { name: 'AES-GCM', length: 256 }, ['encrypt', 'decrypt']);
}

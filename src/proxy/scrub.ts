/**
 * Credentials taken out of the upstream error bodies the gateway relays (issue #16). Headers are
 * allow-listed both ways, but a body is the upstream's: a debug page, or a proxy's error page that
 * echoes the request, would hand the client the credential the gateway sent it.
 *
 * So the body of a non-2xx answer is read whole, up to 64 KiB (an error page has said what it has
 * to say by then; past it the body is cut), and every secret the gateway sent upstream is replaced
 * by `[redacted]`: the credential header's value, the token alone, for a Basic credential the
 * decoded `user:password` and the password, and every fixed header value (UPSTREAM_HEADERS, an
 * upstream's `headers`). Each is matched character by character in the spellings echoes use, mixed
 * as they come: as sent, JSON-string-escaped (`\"`, `\/`, `\u0022`), percent-encoded (either case,
 * `+` for a space), HTML-escaped (named, decimal or hex entities). 2xx answers are never read here:
 * they stream untouched, unbuffered.
 *
 * The body is handled as bytes (each byte one character of a "binary" string), so an error page in
 * any charset passes unchanged except where a secret stood.
 */
import type { UpstreamConfig } from '../config';
import type { UpstreamCredential } from '../upstreams';

/** The most of an error body the client gets. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;
const REDACTED = '[redacted]';
/**
 * A fixed header value shorter than this is not treated as a secret: such values are flags
 * (`true`, `1`, `v2`), and replacing every `true` would garble a JSON error into an unreadable one.
 */
const MIN_FIXED_VALUE_LENGTH = 8;
/** The longest spelling one character of a secret can have here (`\&#x00000022;`), for the cut. */
const MAX_SPELLING_PER_CHARACTER = 13;

const NAMED_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&(?:apos|#39);' };

/** A non-2xx upstream body with every credential of this request replaced, cut at 64 KiB. */
export async function scrubbedErrorBody(
  body: ReadableStream<Uint8Array> | null,
  upstream: UpstreamConfig,
  credential: UpstreamCredential,
): Promise<ReadableStream<Uint8Array> | null> {
  if (body === null) return null;
  const { bytes, cut } = await readAtMost(body, MAX_ERROR_BODY_BYTES);
  return new Response(toBytes(scrubSecrets(toBinary(bytes), secretsOf(upstream, credential), cut))).body;
}

/**
 * `text` (a binary string) with every spelling of `secrets` (binary strings too) replaced. When
 * the text was `cut`, a secret's beginning at its very end is dropped as well.
 */
export function scrubSecrets(text: string, secrets: readonly string[], cut: boolean): string {
  const wanted = [...new Set(secrets)].filter((secret) => secret.length > 0).sort((a, b) => b.length - a.length);
  if (wanted.length === 0) return text;
  // Longest first: at one place the whole header value wins over the token inside it.
  const patterns = wanted.map((secret) => [...secret].map(characterPattern));
  let scrubbed = text.replace(new RegExp(patterns.map((p) => p.join('')).join('|'), 'g'), REDACTED);
  if (cut) {
    // What the end of a cut body holds of a secret's beginning: `a(?:b(?:c)?)?$` for `abc`.
    const prefixes = patterns.map((p) => p.reduceRight((rest, character) => `${character}(?:${rest})?`, ''));
    const tailStart = Math.max(0, scrubbed.length - (wanted[0]?.length ?? 0) * MAX_SPELLING_PER_CHARACTER);
    const partial = new RegExp(`(?:${prefixes.join('|')})$`).exec(scrubbed.slice(tailStart));
    if (partial) scrubbed = scrubbed.slice(0, tailStart + partial.index);
  }
  return scrubbed;
}

/** The secrets this request sent upstream, as binary strings (their UTF-8 bytes). */
function secretsOf(upstream: UpstreamConfig, credential: UpstreamCredential): string[] {
  const secrets = [credential.header[1], credential.token].map(utf8Binary);
  if (upstream.authScheme.toLowerCase() === 'basic') {
    // RFC 7617: base64 of `user:password`, which an echo may show decoded; atob gives its bytes.
    const decoded = decodeBase64(credential.token);
    if (decoded !== undefined) secrets.push(decoded, decoded.slice(decoded.indexOf(':') + 1));
  }
  for (const [, value] of upstream.headers) {
    if (value.length >= MIN_FIXED_VALUE_LENGTH) secrets.push(utf8Binary(value));
  }
  return secrets;
}

/** A regular expression matching one byte of a secret in any of the spellings echoes use. */
function characterPattern(character: string): string {
  const code = character.charCodeAt(0);
  if (/[A-Za-z0-9]/.test(character)) return character;
  const hex = code.toString(16).padStart(2, '0');
  const spellings = [escapeRegExp(character), `%${caseless(hex)}`];
  if (code < 0x80) {
    spellings.push(`&#0{0,4}${code};`, `&#[xX]0{0,4}${caseless(code.toString(16))};`, `\\\\u00${caseless(hex)}`);
    const named = NAMED_ENTITIES[character];
    if (named) spellings.push(named);
    if (character === ' ') spellings.push('\\+');
    if (character === '\t') spellings.push('\\\\t');
  }
  // JSON puts a backslash before `"`, `\` and (some encoders) `/`, whatever spelling follows.
  return `(?:\\\\?(?:${spellings.join('|')}))`;
}

function caseless(hex: string): string {
  return [...hex].map((digit) => (/[a-f]/.test(digit) ? `[${digit}${digit.toUpperCase()}]` : digit)).join('');
}

function escapeRegExp(character: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(character) ? `\\${character}` : character;
}

function decodeBase64(text: string): string | undefined {
  try {
    return atob(text);
  } catch {
    return undefined;
  }
}

function utf8Binary(text: string): string {
  return toBinary(new TextEncoder().encode(text));
}

function toBinary(bytes: Uint8Array): string {
  let text = '';
  // In slices: spreading 64 KiB of arguments at once could pass the engine's argument limit.
  for (let at = 0; at < bytes.byteLength; at += 8192) text += String.fromCharCode(...bytes.subarray(at, at + 8192));
  return text;
}

function toBytes(binary: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(binary, (character) => character.charCodeAt(0));
}

/** Up to `limit` bytes of the stream, and whether there was more (the rest is cancelled) or it failed midway. */
async function readAtMost(stream: ReadableStream<Uint8Array>, limit: number): Promise<{ bytes: Uint8Array; cut: boolean }> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let cut = false;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
      if (total > limit) {
        cut = true;
        reader.cancel().catch(() => {});
        break;
      }
    }
  } catch {
    // The upstream failed mid-body: what arrived is all there is, and may end inside a secret.
    cut = true;
  }
  const bytes = new Uint8Array(Math.min(total, limit));
  let at = 0;
  for (const chunk of chunks) {
    if (at >= bytes.byteLength) break;
    const part = chunk.subarray(0, bytes.byteLength - at);
    bytes.set(part, at);
    at += part.byteLength;
  }
  return { bytes, cut };
}

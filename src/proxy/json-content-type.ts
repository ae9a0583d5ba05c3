/**
 * Whether a request's Content-Type declares JSON, and in which charset. RFC 8259 §8.1: JSON
 * exchanged between systems is UTF-8, and `application/json` defines no charset parameter; a client
 * that names another (utf-7, utf-16, latin1) means bytes the gateway would read differently from an
 * upstream that honours it (body-parser does, through iconv-lite).
 */

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const MEDIA_TYPE = new RegExp(`^[ \\t]*(${TOKEN})/(${TOKEN})[ \\t]*(.*)$`, 's');
// RFC 9110 §5.6.6: parameters = *( OWS ";" OWS [ parameter ] ), parameter = token "=" ( token / quoted-string )
const PARAMETER = new RegExp(`^;[ \\t]*(?:(${TOKEN})=(${TOKEN}|"(?:[^"\\\\]|\\\\.)*"))?[ \\t]*`, 's');
const UTF_8 = new Set(['utf-8', 'utf8']);

/**
 * `utf-8`: JSON, with no charset or charset=utf-8 (any case, quoted or not); `other`: JSON in any
 * other charset, or with parameters that cannot be read; undefined: not `application/json`.
 */
export function jsonCharset(contentType: string | null): 'utf-8' | 'other' | undefined {
  const [, type, subtype, parameters = ''] = MEDIA_TYPE.exec(contentType ?? '') ?? [];
  if (type?.toLowerCase() !== 'application' || subtype?.toLowerCase() !== 'json') return undefined;
  let rest = parameters;
  while (rest !== '') {
    const parameter = PARAMETER.exec(rest);
    if (!parameter) return 'other';
    rest = rest.slice(parameter[0].length);
    const [, name, value] = parameter;
    if (name?.toLowerCase() !== 'charset' || value === undefined) continue;
    const charset = value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/gs, '$1') : value;
    // Every charset parameter counts: parsers differ on which of two they read.
    if (!UTF_8.has(charset.toLowerCase())) return 'other';
  }
  return 'utf-8';
}

/**
 * JSON.parse that loses no number. A number whose shortest form differs from the text it was
 * written as (12345678901234567890, 1.0, 1e400, -0) comes back as `JSON.rawJSON(text)`, which
 * JSON.stringify writes back exactly as it came; every other value is what JSON.parse gives.
 * Uses the source-text reviver and `JSON.rawJSON` of V8 (workerd, Node 21+).
 */

/** A number kept as its original text (`JSON.rawJSON`); `Number(rawJSON)` is its value. */
export interface RawJsonNumber {
  readonly rawJSON: string;
}

interface JsonWithSource {
  rawJSON?: (text: string) => RawJsonNumber;
  isRawJSON?: (value: unknown) => boolean;
}
const json = JSON as unknown as JsonWithSource;

/**
 * A number literal whose text may not survive JSON.parse and JSON.stringify: 16 digits or more, an
 * exponent, a fraction ending in 0, a fraction below 1e-6, or -0. Looked for after `:`, `,` and `[`
 * (where numbers start), inside strings too: a false match only costs the slower parse. Any other
 * literal has at most 15 significant digits and prints as written, so a body without one skips
 * the reviver, which costs about ten times a plain parse.
 */
const UNSAFE_NUMBER = /[:,[]\s*-?(?:(?:\d\.?){16}|\d+(?:\.\d+)?[eE]|\d+\.\d*0(?!\d)|0\.0{6})|[:,[]\s*-0(?![.\d])/;

/** Parses JSON text (throws a SyntaxError as JSON.parse does), keeping every number's text. */
export function parseExactJson(text: string): unknown {
  const rawJSON = json.rawJSON;
  if (rawJSON === undefined || !UNSAFE_NUMBER.test(text)) return JSON.parse(text);
  return JSON.parse(text, (_key, value: unknown, context?: { source?: string }) =>
    typeof value === 'number' && context?.source !== undefined && String(value) !== context.source ? rawJSON(context.source) : value,
  );
}

/** Whether `value` is a number `parseExactJson` kept as its text. */
export function isRawJsonNumber(value: unknown): value is RawJsonNumber {
  return json.isRawJSON?.(value) === true;
}

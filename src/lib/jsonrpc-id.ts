import { isRawJsonNumber } from './exact-json';

/**
 * A stable map key for a JSON-RPC id (1 and "1" are different ids). A number kept as its text
 * keys by its value, so 12345678901234567890 matches the answer of an upstream that read it as
 * the nearest double.
 */
export function idKey(id: unknown): string | undefined {
  if (typeof id === 'string') return `s:${id}`;
  if (typeof id === 'number' && Number.isFinite(id)) return `n:${id}`;
  if (isRawJsonNumber(id)) return `n:${Number(id.rawJSON)}`;
  return undefined;
}

/**
 * What the audit trail keeps of `tools/call` arguments when an upstream opts in (`audit.arguments`,
 * docs/audit.md): the argument names (`keys`) or the arguments themselves (`full`), from the very
 * message the gateway parsed and forwards. The text goes to the trail's `arguments` column only,
 * never to the console line (src/audit/sink.ts).
 */
import type { AuditArguments } from '../config';
import { isRawJsonNumber } from '../lib';

/** The most JSON text stored per request, in UTF-8 bytes. */
export const ARGUMENTS_LIMIT_BYTES = 4096;
/** An argument name longer than this is cut: a name is a label, not content. */
const MAX_KEY_LENGTH = 100;

const encoder = new TextEncoder();

/**
 * The `arguments` column for the calls' `arguments` values (one per `tools/call`, in order;
 * undefined where a call has none), or undefined when nothing is kept. One call gives its own
 * value (`["q"]`, `{"q":"x"}`); a batch gives an array with one entry per call. Over the limit,
 * `full` keeps the names instead, as `{"truncated":true,"keys":…}`, and when even those do not fit
 * (or in `keys` mode) `{"truncated":true}`: always valid JSON, never a value cut in half.
 */
export function argumentsForTrail(calls: readonly unknown[], batch: boolean, mode: AuditArguments): string | undefined {
  if (mode === 'none' || calls.length === 0) return undefined;
  const shape = (each: (args: unknown) => unknown) => JSON.stringify(batch ? calls.map(each) : each(calls[0]));
  if (mode === 'full') {
    const full = shape((args) => args ?? null);
    if (fits(full)) return full;
  }
  const keys = shape(keysOf);
  if (mode === 'keys') return fits(keys) ? keys : TRUNCATED;
  const named = `{"truncated":true,"keys":${keys}}`;
  return fits(named) ? named : TRUNCATED;
}

const TRUNCATED = '{"truncated":true}';

/** The distinct argument names, in the order the client sent them; none for arguments that are not an object. */
function keysOf(args: unknown): string[] {
  if (typeof args !== 'object' || args === null || Array.isArray(args) || isRawJsonNumber(args)) return [];
  return [...new Set(Object.keys(args).map((key) => key.slice(0, MAX_KEY_LENGTH)))];
}

function fits(text: string): boolean {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: no encoding needed when the text cannot be over.
  return text.length * 3 <= ARGUMENTS_LIMIT_BYTES || encoder.encode(text).byteLength <= ARGUMENTS_LIMIT_BYTES;
}

/**
 * The `groups` claim of an Access ID token (or of Access's refresh response): the person's IdP
 * groups, which `group:<name>` entries match exactly. Access sends it only when the sign-in asks
 * for the `groups` scope (ACCESS_SCOPES).
 */
import { MAX_GROUP_NAME } from '../config';

/** More than any IdP puts in a token (Entra ID stops at 200 and sends an overage link instead). */
export const MAX_GROUPS = 1000;

export type GroupsClaim = { groups: string[] } | { refusal: 'malformed_groups'; reason: string };

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const GROUP_NAME = /^[^\x00-\x1f\x7f]+$/;

/**
 * The groups in these claims, in the order sent and without repeats; a missing claim is no
 * groups. Anything else than an array of at most MAX_GROUPS non-empty one-line names of at most
 * MAX_GROUP_NAME characters is a refusal: a login must not go on with groups half read.
 */
export function groupsFromClaims(claims: Readonly<Record<string, unknown>> | undefined): GroupsClaim {
  const value = claims?.groups;
  if (value === undefined) return { groups: [] };
  if (!Array.isArray(value)) return { refusal: 'malformed_groups', reason: `"groups" claim is ${value === null ? 'null' : typeof value}, not an array` };
  if (value.length > MAX_GROUPS) return { refusal: 'malformed_groups', reason: `"groups" claim has ${value.length} entries, more than ${MAX_GROUPS}` };
  const bad = value.findIndex((group) => typeof group !== 'string' || group.length > MAX_GROUP_NAME || !GROUP_NAME.test(group));
  if (bad !== -1) return { refusal: 'malformed_groups', reason: `"groups" claim entry ${bad} is not a one-line name of 1 to ${MAX_GROUP_NAME} characters` };
  return { groups: [...new Set(value as string[])] };
}

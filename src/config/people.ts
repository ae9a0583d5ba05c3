/**
 * The one syntax for people, in every list that names them (ALLOWED_EMAILS, ADMIN_EMAILS, an
 * upstream's `allowedEmails`, `toolsFor` keys): an email, `@domain`, or `group:<name>`, the name
 * exact and case-sensitive as the identity provider sends it in the `groups` claim.
 */

/** Who a list names, parsed once. */
export interface PeopleList {
  /** Lowercased. */
  emails: ReadonlySet<string>;
  /** Lowercased, without the leading "@". */
  domains: ReadonlySet<string>;
  /** As written after `group:`, case kept. */
  groups: ReadonlySet<string>;
}

export type PeopleEntry = { kind: 'email' | 'domain' | 'group'; name: string };

/** What every problem about an entry says it may be. */
export const PEOPLE_HINT = 'an email, an @domain or a group:<name>, e.g. alice@example.com, @example.org, group:maintainers';

const GROUP_PREFIX = 'group:';
/** The longest group name a `groups` claim may carry (src/sign-in/groups.ts reads it the same way). */
export const MAX_GROUP_NAME = 256;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const GROUP_NAME = /^[^\x00-\x1f\x7f]+$/;

/** One entry, or undefined when it is none of the three. */
export function parsePeopleEntry(raw: string): PeopleEntry | undefined {
  const entry = raw.trim();
  if (entry.startsWith(GROUP_PREFIX)) {
    const name = entry.slice(GROUP_PREFIX.length);
    return name.length <= MAX_GROUP_NAME && GROUP_NAME.test(name) && name.trim() === name ? { kind: 'group', name } : undefined;
  }
  const lower = entry.toLowerCase();
  if (/^@[^@\s]+\.[^@\s]+$/.test(lower)) return { kind: 'domain', name: lower.slice(1) };
  if (/^[^@\s]+@[^@\s]+$/.test(lower)) return { kind: 'email', name: lower };
  return undefined;
}

/** A list of entries, or undefined when one of them is none of the three. */
export function parsePeopleList(entries: readonly string[]): PeopleList | undefined {
  const list = { emails: new Set<string>(), domains: new Set<string>(), groups: new Set<string>() };
  for (const raw of entries) {
    const entry = parsePeopleEntry(raw);
    if (!entry) return undefined;
    ({ email: list.emails, domain: list.domains, group: list.groups })[entry.kind].add(entry.name);
  }
  return list;
}

/** Which tool rules apply to one person on one upstream (the rules themselves: src/policy/tool-rules.ts). */
import type { ToolPolicy, ToolRules } from '../config';
import { domainOf, type Person } from './allowlists';

/**
 * The rules for this person: their email's `toolsFor` entry, else the first `group:` entry in the
 * configuration's order that names one of their groups, else their domain's, else `tools`.
 */
export function toolRulesFor(policy: ToolPolicy | undefined, person: Person): ToolRules | undefined {
  if (!policy) return undefined;
  const { email } = person;
  const groups = new Set(person.groups ?? []);
  const group = policy.groups.find(([name]) => groups.has(name));
  return policy.emails.get(email) ?? group?.[1] ?? policy.domains.get(domainOf(email)) ?? policy.fallback;
}

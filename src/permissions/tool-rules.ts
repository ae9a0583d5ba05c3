/** Which tool rules apply to one person on one upstream (the rules themselves: src/policy/tool-rules.ts). */
import type { ToolPolicy, ToolRules } from '../config';
import type { Person } from './allowlists';

/** The rules for this person's (lowercased) email: its own `toolsFor` entry, else its domain's, else `tools`. */
export function toolRulesFor(policy: ToolPolicy | undefined, person: Person): ToolRules | undefined {
  if (!policy) return undefined;
  const { email } = person;
  const domain = email.slice(email.lastIndexOf('@') + 1);
  return policy.emails.get(email) ?? policy.domains.get(domain) ?? policy.fallback;
}

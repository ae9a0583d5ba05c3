import type { Config } from '../config';
import { upstreamTokenFor } from '../upstream/credentials';

/** Whether ALLOWED_EMAILS admits this (lowercased) email; no list admits everyone Access lets in. */
export function isAllowedEmail(config: Config, email: string): boolean {
  const list = config.allowedEmails;
  if (!list) return true;
  const domain = email.slice(email.lastIndexOf('@') + 1);
  return list.emails.has(email) || list.domains.has(domain);
}

/** Why this user may not use the gateway, or undefined when they may. Checked at login, request and refresh. */
export function refusalFor(config: Config, email: string): 'not_allowed' | 'no_upstream_token' | undefined {
  if (!isAllowedEmail(config, email)) return 'not_allowed';
  if (upstreamTokenFor(config.upstream, email) === undefined) return 'no_upstream_token';
  return undefined;
}

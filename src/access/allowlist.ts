import type { Config, EmailAllowlist, UpstreamConfig } from '../config';
import { upstreamTokenFor } from '../upstreams';

/** Whether a list admits this (lowercased) email; no list admits everyone. */
export function admits(list: EmailAllowlist | undefined, email: string): boolean {
  if (!list) return true;
  const domain = email.slice(email.lastIndexOf('@') + 1);
  return list.emails.has(email) || list.domains.has(domain);
}

/**
 * Whether this (lowercased) email may use this upstream: ALLOWED_EMAILS admits it (no list admits
 * everyone Access lets in), and so does the upstream's own `allowedEmails`, which only narrows.
 */
export function isAllowedEmail(config: Config, upstream: UpstreamConfig, email: string): boolean {
  return admits(config.allowedEmails, email) && admits(upstream.allowedEmails, email);
}

/**
 * Why this user may not use this upstream, or undefined when they may. Checked at login, request
 * and refresh. On a `userSupplied` upstream a missing token is not a refusal: the person brings it.
 */
export function refusalFor(config: Config, upstream: UpstreamConfig, email: string): 'not_allowed' | 'no_upstream_token' | undefined {
  if (!isAllowedEmail(config, upstream, email)) return 'not_allowed';
  if (!upstream.userSupplied && upstreamTokenFor(upstream, email) === undefined) return 'no_upstream_token';
  return undefined;
}

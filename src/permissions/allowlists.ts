/**
 * Who may use what: ALLOWED_EMAILS and each upstream's `allowedEmails`, the admins of
 * /connections, and whether a person has an upstream credential at all. Every decision takes the
 * person whole (`Person`: email and IdP groups), so a new criterion is added here and nowhere else.
 */
import type { Config, PeopleList, UpstreamConfig } from '../config';
import type { Identity } from '../identity';
import { takesOwnTokens, upstreamTokenFor } from '../upstreams';

/**
 * Who a decision is about: a signed-in identity, or someone an admin's list knows by email only.
 * Without `groups` (none known) no `group:` entry matches them.
 */
export type Person = Pick<Identity, 'email' | 'groups'>;

/** Whether a list names this person: their (lowercased) email, its domain, or one of their groups; no list admits everyone. */
export function admits(list: PeopleList | undefined, person: Person): boolean {
  if (!list) return true;
  const { email } = person;
  return list.emails.has(email) || list.domains.has(domainOf(email)) || (person.groups ?? []).some((group) => list.groups.has(group));
}

/** The part of an email after its last "@". */
export function domainOf(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1);
}

/** Whether ALLOWED_EMAILS lets this person use the gateway at all (no list: everyone Access lets in). */
export function mayUseGateway(config: Config, person: Person): boolean {
  return admits(config.allowedEmails, person);
}

/** Whether this person may see and manage everyone's connections on /connections (ADMIN_EMAILS). */
export function isAdmin(config: Config, person: Person): boolean {
  return config.adminEmails !== undefined && admits(config.adminEmails, person);
}

/**
 * Whether this person may use this upstream: ALLOWED_EMAILS admits them (no list admits
 * everyone Access lets in), and so does the upstream's own `allowedEmails`, which only narrows.
 */
export function isAllowedEmail(config: Config, upstream: UpstreamConfig, person: Person): boolean {
  return mayUseGateway(config, person) && admits(upstream.allowedEmails, person);
}

/**
 * Why this person may not use this upstream, or undefined when they may. Checked at login, request
 * and refresh. On a `userSupplied` upstream a missing token is not a refusal: the person brings it.
 */
export function refusalFor(config: Config, upstream: UpstreamConfig, person: Person): 'not_allowed' | 'no_upstream_token' | undefined {
  if (!isAllowedEmail(config, upstream, person)) return 'not_allowed';
  if (!takesOwnTokens(upstream) && upstreamTokenFor(upstream, person.email) === undefined) return 'no_upstream_token';
  return undefined;
}

/**
 * Why this person may not use a resource reaching these upstreams (one for an upstream's own
 * resource, several for an aggregate), or undefined when at least one of them lets them in: an
 * aggregate serves each person the upstreams they may use. Refused by all, they get the refusal
 * the upstreams give: `not_allowed` when every one refuses them so.
 */
export function refusalForAny(config: Config, upstreams: readonly UpstreamConfig[], person: Person): 'not_allowed' | 'no_upstream_token' | undefined {
  const refusals = upstreams.map((upstream) => refusalFor(config, upstream, person));
  if (refusals.includes(undefined)) return undefined;
  return refusals.every((refusal) => refusal === 'not_allowed') ? 'not_allowed' : 'no_upstream_token';
}

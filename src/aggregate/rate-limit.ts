/** An aggregate call counts against the rate limit of the upstream it goes to, as a proxied call does. */
import { takeRequests } from '../policy';
import type { Member } from './members';
import { type Refusal, refusals } from './refusals';

/** The refusal when this call would cross the member's `rateLimit`; undefined when it may go (or the limiter cannot answer). */
export async function rateLimitRefusal(member: Member, email: string): Promise<Refusal | undefined> {
  const limit = member.upstream.rateLimit;
  if (!limit) return undefined;
  const verdict = await takeRequests(limit, member.upstream.name, email, 1);
  if (!verdict || verdict.ok) return undefined;
  return refusals.rateLimited(member, Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)));
}

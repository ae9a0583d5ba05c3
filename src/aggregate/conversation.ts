/**
 * One conversation with a member's upstream for one piece of work, through the gateway's upstream
 * client: the revision it speaks (remembered a few minutes), and for a 2025 server with sessions
 * a session opened for the work and ended after it, so nothing is left open upstream.
 */
import { type CallResult, linkFor, openConversation, type UpstreamLink } from '../upstreams';
import type { Member } from './members';

/** Why an upstream's answer is missing: too slow, unreachable, the client gone, the credential refused, or no usable answer. */
export type LeftOutReason = 'timeout' | 'unreachable' | 'refused' | 'failed' | 'client_closed';

export type Opened<T> = T | { refusal: true; reason: LeftOutReason; status: number | undefined; called: CallResult | undefined };

/**
 * Opens a conversation with the member's upstream (its revision, and for a 2025 server with
 * sessions one session), runs `work` on it, and ends it: nothing is left open upstream.
 */
export async function withConversation<T extends object>(member: Member, signal: AbortSignal, work: (link: UpstreamLink) => Promise<T>): Promise<Opened<T>> {
  const link = { ...linkFor(member.upstream, member.credential?.header), signal };
  const opened = await openConversation(link);
  if (opened.outcome === 'refused') return { refusal: true, reason: 'refused', status: opened.status, called: undefined };
  if (opened.outcome === 'failed') {
    const { called } = opened;
    const reason: LeftOutReason = called.outcome === 'response' ? 'failed' : called.outcome;
    return { refusal: true, reason, status: called.outcome === 'response' ? called.response.status : undefined, called };
  }
  try {
    return await work(opened.link);
  } finally {
    await opened.end();
  }
}

/**
 * One conversation with a member's upstream for one piece of work, through the gateway's upstream
 * client: the revision it speaks (remembered a few minutes), and for a 2025 server with sessions
 * a session opened for the work and ended after it, so nothing is left open upstream.
 */
import { type CallResult, linkFor, openConversation, type UpstreamLink } from '../upstreams';
import type { Member } from './members';
import type { SessionOpening } from './sessions';

/** A 2025 client session's upstream sessions (sessions.ts), as one request reaches them. */
export interface SessionLinks {
  open(member: Member): Promise<SessionOpening>;
  /** The upstream answered 404 for this session: the next request opens a new one. */
  forget(member: Member, sessionId: string | undefined): Promise<void>;
}

/** Why an upstream's answer is missing: too slow, unreachable, the client gone, the credential refused, or no usable answer. */
export type LeftOutReason = 'timeout' | 'unreachable' | 'refused' | 'failed' | 'client_closed';

export type Opened<T> = T | { refusal: true; reason: LeftOutReason; status: number | undefined; called: CallResult | undefined };

/**
 * Opens a conversation with the member's upstream (its revision, and for a 2025 server with
 * sessions one session), runs `work` on it, and ends it: nothing is left open upstream. Within a
 * client's 2025 session (`sessions`), the work rides on that session's upstream session instead,
 * opened once and kept until the client session ends; one the upstream no longer knows (`stale`
 * says so of the work's result: its 404) is forgotten and the work tried once more on a new one.
 */
export async function withConversation<T extends object>(
  member: Member,
  signal: AbortSignal,
  work: (link: UpstreamLink) => Promise<T>,
  within?: { sessions: SessionLinks | undefined; stale: (result: T) => boolean },
): Promise<Opened<T>> {
  const link = { ...linkFor(member.upstream, member.credential?.header), signal };
  const sessions = within?.sessions;
  if (sessions) {
    for (let attempt = 0; ; attempt++) {
      const opening = await sessions.open(member);
      if (opening.outcome === 'unknown') return { refusal: true, reason: 'failed', status: 404, called: undefined };
      if (opening.outcome === 'refused') return { refusal: true, reason: 'refused', status: opening.status, called: undefined };
      if (opening.outcome === 'failed') return { refusal: true, reason: opening.reason, status: opening.status, called: undefined };
      const { revision, sessionId } = opening.session;
      link.headers.set('MCP-Protocol-Version', revision);
      if (sessionId !== undefined) link.headers.set('Mcp-Session-Id', sessionId);
      const result = await work(link);
      if (attempt > 0 || sessionId === undefined || !within.stale(result)) return result;
      await sessions.forget(member, sessionId);
    }
  }
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

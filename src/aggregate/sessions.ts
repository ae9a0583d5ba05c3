/**
 * Where a 2025-era client session's upstream sessions live: one Durable Object per client
 * session, holding, per upstream, the session the gateway opened there (its `Mcp-Session-Id` and
 * revision). A Durable Object because the mapping must be strongly consistent and have one writer:
 * two parallel first requests of a session that both need the same upstream must share one
 * upstream session, not open two (the object opens it once and both wait for it); and an alarm
 * ends a session nobody used for a while. KV is eventually consistent (two isolates would each
 * open their own), and a signed stateless handle is fixed at `initialize`, so it cannot grow as
 * upstreams are reached later.
 *
 * Never a credential: the opening request's headers are passed in for that one request and not
 * kept. An idle session is forgotten, not ended upstream (ending needs the credential): the
 * upstream expires it in its own time.
 */
import { DurableObject } from 'cloudflare:workers';
import type { UpstreamConfig } from '../config';
import { linkFor, openConversation } from '../upstreams';

/** How long a session lives without a request. */
export const SESSION_IDLE_MS = 30 * 60_000;

/** An upstream's session as the client session holds it: the headers its requests carry. */
export interface UpstreamSession {
  revision: string;
  /** Undefined for a stateless upstream (2026-07-28, or a 2025 server without sessions). */
  sessionId: string | undefined;
}

export type SessionOpening =
  | { outcome: 'open'; session: UpstreamSession }
  /** The client session is over (ended, or idle too long): the client starts a new one. */
  | { outcome: 'unknown' }
  | { outcome: 'refused'; status: number }
  | { outcome: 'failed'; reason: 'timeout' | 'unreachable' | 'client_closed' | 'failed'; status: number | undefined };

/** What the object is asked to open: the upstream and, for this one request, its headers (the credential among them). */
export interface OpeningRequest {
  upstream: string;
  url: string;
  headers: Array<[string, string]>;
  timeoutMs: number;
}

export class AggregateSessions extends DurableObject {
  /** Openings under way, so parallel first requests wait for the same one. */
  #opening = new Map<string, Promise<SessionOpening>>();

  /** Starts the client session (at its `initialize`). */
  async begin(): Promise<void> {
    this.ctx.storage.kv.put('open', true);
    await this.ctx.storage.setAlarm(Date.now() + SESSION_IDLE_MS);
  }

  /** Whether the session is still open; a request keeps it alive. */
  async touch(): Promise<boolean> {
    if (this.ctx.storage.kv.get('open') !== true) return false;
    await this.ctx.storage.setAlarm(Date.now() + SESSION_IDLE_MS);
    return true;
  }

  /** The session on `upstream`, opened now if there is none yet (once, however many ask at the same time). */
  async open(request: OpeningRequest): Promise<SessionOpening> {
    if (this.ctx.storage.kv.get('open') !== true) return { outcome: 'unknown' };
    const known = this.ctx.storage.kv.get<UpstreamSession>(`upstream:${request.upstream}`);
    if (known) return { outcome: 'open', session: known };
    let opening = this.#opening.get(request.upstream);
    if (!opening) {
      opening = this.#openNow(request).finally(() => this.#opening.delete(request.upstream));
      this.#opening.set(request.upstream, opening);
    }
    return opening;
  }

  /** Forgets the session on `upstream` (it answered 404 for it): the next request opens a new one. */
  forget(upstream: string, sessionId: string | undefined): void {
    const known = this.ctx.storage.kv.get<UpstreamSession>(`upstream:${upstream}`);
    if (known && known.sessionId === sessionId) this.ctx.storage.kv.delete(`upstream:${upstream}`);
  }

  /** Ends the client session: every upstream session it held, returned for the caller to end with its credentials. */
  async end(): Promise<Record<string, UpstreamSession>> {
    const held: Record<string, UpstreamSession> = {};
    for (const [key, value] of this.ctx.storage.kv.list<UpstreamSession>({ prefix: 'upstream:' })) held[key.slice('upstream:'.length)] = value;
    await this.ctx.storage.deleteAll();
    return held;
  }

  /** Idle too long: forgotten. */
  override async alarm(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }

  async #openNow(request: OpeningRequest): Promise<SessionOpening> {
    const link = {
      url: new URL(request.url),
      headers: new Headers(request.headers),
      timeoutMs: request.timeoutMs,
      signal: AbortSignal.timeout(request.timeoutMs),
    };
    const opened = await openConversation(link);
    if (opened.outcome === 'refused') return { outcome: 'refused', status: opened.status };
    if (opened.outcome === 'failed') {
      const { called } = opened;
      const reason = called.outcome === 'response' ? 'failed' : called.outcome;
      return { outcome: 'failed', reason, status: called.outcome === 'response' ? called.response.status : undefined };
    }
    const session: UpstreamSession = { revision: opened.revision, sessionId: opened.link.headers.get('Mcp-Session-Id') ?? undefined };
    // The session may have ended while this one was opening: then this upstream session is ended too.
    if (this.ctx.storage.kv.get('open') !== true) {
      await opened.end();
      return { outcome: 'unknown' };
    }
    this.ctx.storage.kv.put(`upstream:${request.upstream}`, session);
    return { outcome: 'open', session };
  }
}

/** What `open` needs to reach an upstream with this credential header. */
export function openingRequest(upstream: UpstreamConfig, credential: readonly [string, string] | undefined): OpeningRequest {
  const link = linkFor(upstream, credential);
  return { upstream: upstream.name, url: upstream.url.href, headers: [...link.headers], timeoutMs: upstream.timeoutMs };
}

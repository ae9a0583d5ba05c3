/**
 * What this isolate already knows of 2025 client sessions, so that a call within one does not
 * ask the session's Durable Object (sessions.ts) every time: each round trip to it costs a few
 * milliseconds, and a session's requests mostly land in the same isolate. The object stays the
 * one writer and the truth; this only remembers its answers:
 *
 * - an upstream session the object opened (its id never changes; one the upstream forgot
 *   answers 404, and `forget` drops it here and there, so the next request asks the object);
 * - that the session was open, for `TOUCH_MS`: the object's idle alarm is pushed back at most
 *   that often, and a session ended by a DELETE in another isolate is noticed here within that
 *   time (its upstream sessions, ended by that DELETE, answer 404 at once).
 */
import type { UpstreamSession } from './sessions';

/** How long a session's "open" is taken as still true here, and how often its idle alarm is pushed back. */
export const TOUCH_MS = 60_000;
/** Sessions remembered per isolate; the least recently used goes first. */
const MAX_SESSIONS = 1_000;

interface Known {
  touchedAt: number;
  upstreams: Map<string, UpstreamSession>;
}

const known = new Map<string, Known>();

/** Whether the object must be asked if the session is open (and its alarm pushed back). */
export function needsTouch(id: string, now = Date.now()): boolean {
  const session = known.get(id);
  return !session || now - session.touchedAt >= TOUCH_MS;
}

/** The object said the session is open (at `initialize`, or a touch). */
export function rememberOpen(id: string, now = Date.now()): void {
  const session = known.get(id);
  known.delete(id);
  known.set(id, { touchedAt: now, upstreams: session?.upstreams ?? new Map() });
  if (known.size > MAX_SESSIONS) known.delete(known.keys().next().value as string);
}

/** The upstream session the object opened for this client session, when this isolate has seen it. */
export function knownUpstreamSession(id: string, upstream: string): UpstreamSession | undefined {
  return known.get(id)?.upstreams.get(upstream);
}

export function rememberUpstreamSession(id: string, upstream: string, session: UpstreamSession): void {
  known.get(id)?.upstreams.set(upstream, session);
}

export function forgetUpstreamSession(id: string, upstream: string): void {
  known.get(id)?.upstreams.delete(upstream);
}

/** The session ended (DELETE), or the object no longer knows it. */
export function forgetSession(id: string): void {
  known.delete(id);
}

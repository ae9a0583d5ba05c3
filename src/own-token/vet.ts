import type { UpstreamConfig } from '../config';
import { probeUpstream } from '../upstreams';
import { MALFORMED_TOKEN, readPastedToken, refusedBy, unreachable } from './page';

export type VettedToken = { token: string } | { problem: string; status: 400 | 503 };

/**
 * A pasted token, once it is well formed and the upstream accepts it; otherwise what to tell the
 * person and with which status. The same checks at login and on /connections.
 */
export async function vetPastedToken(upstream: UpstreamConfig, server: string, value: unknown, ctx: ExecutionContext): Promise<VettedToken> {
  const token = readPastedToken(value);
  if (!token) return { problem: MALFORMED_TOKEN, status: 400 };
  const check = await probeUpstream(upstream, token, ctx);
  if (check === 'refused') return { problem: refusedBy(server), status: 400 };
  if (check === 'unavailable') return { problem: unreachable(server), status: 503 };
  return { token };
}

/**
 * The token check: whether an upstream accepts a person's pasted token, asked through the
 * gateway's own MCP client (client.ts) in the revision the upstream speaks.
 *
 * Plain TypeScript with no Workers-only import: the doctor loads it in Node.
 */
import type { UpstreamConfig } from '../config';
import { CHECK_TIMEOUT_MS, callUpstream, gatewayId, linkFor, MAX_OPENING_BYTES, openConversation, type UpstreamLink } from './client';
import { authHeaderFor } from './credentials';
import { forgetRevision, isModernRevision, knownRevision } from './revision';

/** What the token check makes of an upstream's answer to a request with a token. */
export type TokenCheck = 'accepted' | 'refused' | 'unavailable';

/**
 * Whether an upstream accepts a token, asked the way an MCP client would. Used before a person's
 * own token is stored, so a mistyped or under-scoped token is caught on the page where it was
 * pasted rather than on the first tool call. `initialize` needs the token; `server/discover` may
 * not (shared caches may hold its answer), so a 2026-07-28 server is asked for its tool list too.
 */
export async function probeUpstream(upstream: UpstreamConfig, token: string, ctx?: ExecutionContext): Promise<TokenCheck> {
  const link = linkFor(upstream, authHeaderFor(upstream, token), Math.min(upstream.timeoutMs, CHECK_TIMEOUT_MS));
  const remembered = knownRevision(link.url);
  const check = await checkToken(link, ctx);
  // A remembered 2026-07-28 opens without a request: if the list then fails, ask the upstream afresh.
  if (check !== 'unavailable' || remembered !== 'modern') return check;
  forgetRevision(link.url);
  return checkToken(link, ctx);
}

async function checkToken(link: UpstreamLink, ctx: ExecutionContext | undefined): Promise<TokenCheck> {
  const opened = await openConversation(link);
  if (opened.outcome === 'refused') return 'refused';
  if (opened.outcome === 'failed') return 'unavailable';
  if (!isModernRevision(opened.revision)) {
    const ended = opened.end();
    ctx?.waitUntil(ended);
    return 'accepted';
  }
  const listed = await callUpstream(opened.link, { jsonrpc: '2.0', id: gatewayId('check'), method: 'tools/list', params: {} }, MAX_OPENING_BYTES);
  if (listed.outcome !== 'response') return 'unavailable';
  const { status } = listed.response;
  if (status === 401 || status === 403) return 'refused';
  // Past the credential: a result, or an answer such as "method not found" (a server without tools).
  return listed.response.ok || listed.answer !== undefined ? 'accepted' : 'unavailable';
}

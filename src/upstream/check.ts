/**
 * Whether an upstream accepts a token, asked the way an MCP client would: an `initialize` with it.
 * Used before a person's own token is stored, so a mistyped or under-scoped token is caught on the
 * page where it was pasted rather than on the first tool call.
 */
import type { UpstreamConfig } from '../config';
import { authHeaderFor } from './credentials';

export type TokenCheck = 'accepted' | 'refused' | 'unavailable';

const CHECK_TIMEOUT_MS = 10_000;
const PROTOCOL_VERSION = '2025-06-18';

export async function checkUpstreamToken(upstream: UpstreamConfig, token: string, ctx?: ExecutionContext): Promise<TokenCheck> {
  const headers = new Headers(upstream.headers as Array<[string, string]>);
  headers.set('Content-Type', 'application/json');
  headers.set('Accept', 'application/json, text/event-stream');
  headers.set(...authHeaderFor(upstream, token));
  let response: Response;
  try {
    response = await fetch(upstream.url, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'mcp-oauth-gateway token check', version: '1' } },
      }),
      // Never follow a redirect with the token: it could lead anywhere.
      redirect: 'manual',
      signal: AbortSignal.timeout(Math.min(upstream.timeoutMs, CHECK_TIMEOUT_MS)),
    });
  } catch {
    return 'unavailable';
  }
  await response.body?.cancel().catch(() => {});
  if (response.status === 401 || response.status === 403) return 'refused';
  if (!response.ok) return 'unavailable';
  // Leave no session behind on a stateful server (DELETE may be refused with 405: that is fine).
  const session = response.headers.get('Mcp-Session-Id');
  if (session) {
    headers.set('Mcp-Session-Id', session);
    headers.set('Mcp-Protocol-Version', PROTOCOL_VERSION);
    const end = fetch(upstream.url, { method: 'DELETE', headers, redirect: 'manual', signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) })
      .then((r) => r.body?.cancel())
      .catch(() => {});
    ctx?.waitUntil(end);
  }
  return 'accepted';
}

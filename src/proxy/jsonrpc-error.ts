/**
 * The proxy's own answers, as JSON-RPC error responses so MCP clients show the message instead of
 * a parse error. Messages are fixed strings: never an upstream host, an error's text or a token.
 */
import { withCors } from './headers';

/** JSON-RPC 2.0 request id; only ever echoed from a small body the proxy parsed for its log. */
export type JsonRpcId = string | number | null;

/** -32600 is JSON-RPC's own; the rest sit in its implementation-defined server range. */
export const ProxyError = {
  pathRefused: { status: 400, code: -32600, message: 'invalid MCP endpoint path' },
  notAllowed: { status: 403, code: -32001, message: 'this account is no longer allowed to use this server' },
  methodNotAllowed: { status: 405, code: -32600, message: 'method not allowed: use POST, GET or DELETE' },
  // As the MCP SDK's servers answer an unknown session, so a client starts a new one (issue #16).
  unknownSession: { status: 404, code: -32001, message: 'session not found: start a new session' },
  noUpstreamCredential: {
    status: 403,
    code: -32002,
    message: 'this gateway has no upstream credential for your account: ask its operator to add one',
  },
  noOwnToken: {
    status: 403,
    code: -32002,
    message: 'this server needs a token of your own: add it at {origin}/connections',
  },
  upstreamRefusedCredential: {
    status: 502,
    code: -32003,
    message: "the upstream MCP server refused the gateway's credential: its operator needs to renew it",
  },
  upstreamRefusedOwnToken: {
    status: 502,
    code: -32003,
    message: 'the upstream MCP server refused your token: replace it at {origin}/connections',
  },
  upstreamUnreachable: { status: 502, code: -32004, message: 'the upstream MCP server could not be reached' },
  upstreamBadResponse: { status: 502, code: -32004, message: 'the upstream MCP server redirected outside this endpoint' },
  upstreamTimeout: { status: 504, code: -32005, message: 'the upstream MCP server did not answer in time' },
} as const satisfies Record<string, { status: number; code: number; message: string }>;

export type ProxyErrorKind = keyof typeof ProxyError;

/**
 * Renders one of the proxy's errors; `extra` adds headers such as `Allow`. `{origin}` in a message
 * becomes the gateway's own origin, so a person is told where to fix their token.
 */
export function jsonRpcErrorResponse(kind: ProxyErrorKind, id: JsonRpcId, origin: string | null, extra?: HeadersInit, gatewayOrigin = ''): Response {
  const { status, code } = ProxyError[kind];
  const message = ProxyError[kind].message.replace('{origin}', gatewayOrigin);
  const headers = withCors(new Headers(extra), origin);
  headers.set('Content-Type', 'application/json');
  headers.set('Cache-Control', 'no-store');
  return new Response(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id }), { status, headers });
}

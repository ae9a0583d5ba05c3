/**
 * The proxy's own answers, as JSON-RPC error responses so MCP clients show the message instead of
 * a parse error. Messages are fixed strings: never an upstream host, an error's text or a token.
 */
import type { RawJsonNumber } from '../lib';
import { withCors } from './headers';

/** JSON-RPC 2.0 request id, echoed from the body the proxy parsed (a big number kept as its text). */
export type JsonRpcId = string | number | RawJsonNumber | null;

/**
 * Every JSON-RPC error the gateway sends, its own and those it answers in the upstream's place.
 * -32700, -32600 and -32602 are JSON-RPC's own; the rest sit in its implementation-defined server
 * range. `{name}` in a message is filled in when it is rendered.
 */
export const ProxyError = {
  pathRefused: { status: 400, code: -32600, message: 'invalid MCP endpoint path' },
  // The request body (src/proxy/message.ts, jsonrpc-message.ts): refused before anything goes upstream.
  notUtf8Charset: { status: 400, code: -32600, message: 'send JSON-RPC as UTF-8 (RFC 8259): Content-Type application/json, with no charset or charset=utf-8' },
  bodyNotRead: { status: 400, code: -32600, message: 'the request body could not be read to its end' },
  notUtf8: { status: 400, code: -32600, message: 'the request body is not valid UTF-8, which JSON requires (RFC 8259)' },
  parseError: { status: 400, code: -32700, message: 'parse error: the request body is not valid JSON' },
  invalidMessage: { status: 400, code: -32600, message: 'invalid request: each message must be a JSON-RPC 2.0 request, notification or response' },
  invalidId: { status: 400, code: -32600, message: 'invalid request: a request id must be a string or a number' },
  duplicateId: { status: 400, code: -32600, message: 'invalid request: each request of a batch needs its own id' },
  emptyBatch: { status: 400, code: -32600, message: 'invalid request: a batch must hold at least one message' },
  batchTooLarge: { status: 400, code: -32600, message: 'invalid request: a batch holds at most 100 messages' },
  ambiguousKey: { status: 400, code: -32600, message: 'invalid request: a key differs from a JSON-RPC or MCP field only in case' },
  // MCP 2026-07-28 (src/proxy/mcp-headers.ts): -32020 is its HeaderMismatch.
  headerMismatch: {
    status: 400,
    code: -32020,
    message: 'header mismatch: MCP-Protocol-Version, Mcp-Method and Mcp-Name must be sent as the body calls for and agree with it',
  },
  statelessBatch: { status: 400, code: -32600, message: 'invalid request: protocol revision 2026-07-28 has no batches: send each request on its own' },
  uninspectable: {
    status: 400,
    code: -32600,
    message:
      'this gateway checks every request against a tool policy or rate limit and could not read this one: send JSON-RPC as application/json of at most 1 MiB',
  },
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
  // The tool policy and the rate limit (src/proxy/tool-policy.ts).
  uncheckableAnswer: { status: 502, code: -32004, message: 'the upstream MCP server sent an answer the gateway could not check' },
  rateLimited: { status: 429, code: -32006, message: 'rate limit of {requests} requests per {period} s reached for this server: retry in {seconds} s' },
  batchOverRateLimit: {
    status: 429,
    code: -32006,
    message: "a batch of {cost} requests is more than this server's rate limit of {requests} requests per {period} s allows: send fewer at once",
  },
  // JSON-RPC 2.0 §5.1 "Invalid params": the code MCP servers use for an unknown tool. An answer
  // among the upstream's (status 200), one per refused call.
  toolRefused: { status: 200, code: -32602, message: 'tool {name} is not available through this gateway' },
  resourceRefused: { status: 200, code: -32602, message: 'resource {name} is not available through this gateway' },
  promptRefused: { status: 200, code: -32602, message: 'prompt {name} is not available through this gateway' },
} as const satisfies Record<string, { status: number; code: number; message: string }>;

export type ProxyErrorKind = keyof typeof ProxyError;

/**
 * Renders one of the proxy's errors; `extra` adds headers such as `Allow`. `{origin}` in a message
 * becomes the gateway's own origin, so a person is told where to fix their token.
 */
export function jsonRpcErrorResponse(kind: ProxyErrorKind, id: JsonRpcId, origin: string | null, extra?: HeadersInit, gatewayOrigin = ''): Response {
  const { status, code } = ProxyError[kind];
  const message = messageOf(kind, { origin: gatewayOrigin });
  const headers = withCors(new Headers(extra), origin);
  headers.set('Content-Type', 'application/json');
  headers.set('Cache-Control', 'no-store');
  return new Response(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id }), { status, headers });
}

/**
 * One of the errors as a JSON-RPC answer the gateway gives in the upstream's place (a refused
 * tool call, a rate limit): `id` first, as those answers have always been written.
 */
export function jsonRpcErrorAnswer(kind: ProxyErrorKind, id: unknown, values: Readonly<Record<string, string | number>> = {}, data?: unknown): unknown {
  const { code } = ProxyError[kind];
  const message = messageOf(kind, values);
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

/** A JSON-RPC answer (or batch of them) the gateway sends itself, uncached, with CORS for a browser `origin`. */
export function jsonRpcAnswerResponse(message: unknown, status: number, origin: string | null): Response {
  const headers = withCors(new Headers({ 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }), origin);
  return new Response(JSON.stringify(message), { status, headers });
}

function messageOf(kind: ProxyErrorKind, values: Readonly<Record<string, string | number>>): string {
  return ProxyError[kind].message.replace(/\{(\w+)\}/g, (placeholder, name: string) => String(values[name] ?? placeholder));
}

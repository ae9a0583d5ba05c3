/**
 * The JSON-RPC errors an aggregate answers a call with itself, each naming the upstream (by its
 * title) so a person knows which connection to fix. Codes are the proxy's (src/proxy/jsonrpc-error.ts);
 * the answer is always in-band (HTTP 200 on the call's own response): an aggregate never answers
 * 401, which would send the client into re-authorizing against the gateway for an upstream's sake.
 */
import { scrubSecrets } from '../proxy';
import type { Member } from './members';

export interface Refusal {
  code: number;
  message: string;
}

export const refusals = {
  /**
   * `origin`: the gateway's, where /connections lives. Not the proxy's -32002: in MCP that code
   * meant "resource not found", and the SDK answers a thrown -32002 as -32602.
   */
  noOwnToken: (member: Member, origin: string): Refusal => ({
    code: -32007,
    message: `${member.label} needs a token of your own: add it at ${origin}/connections, then try again`,
  }),
  refusedCredential: (member: Member, origin: string): Refusal =>
    member.credential?.kind === 'own'
      ? { code: -32003, message: `${member.label} refused your token: replace it at ${origin}/connections` }
      : { code: -32003, message: `${member.label} refused the gateway's credential: its operator needs to renew it` },
  unreachable: (member: Member): Refusal => ({ code: -32004, message: `${member.label} could not be reached` }),
  noAnswer: (member: Member): Refusal => ({ code: -32004, message: `${member.label} sent no answer the gateway could read` }),
  timeout: (member: Member): Refusal => ({ code: -32005, message: `${member.label} did not answer in time` }),
  rateLimited: (member: Member, seconds: number): Refusal => ({
    code: -32006,
    message: `rate limit reached for ${member.label}: retry in ${seconds} s`,
  }),
  // JSON-RPC 2.0 §5.1 "Invalid params": what MCP servers answer for an unknown tool. A hidden tool
  // gets the same answer as one that does not exist.
  unknownTool: (name: string): Refusal => ({ code: -32602, message: `tool ${name} is not available through this gateway` }),
} as const;

/**
 * The upstream's own JSON-RPC error, passed on as the client's (same code and message), with the
 * member's credential scrubbed from its text as the proxy scrubs error bodies.
 */
export function upstreamError(member: Member, error: Record<string, unknown>): Refusal & { data?: unknown } {
  const { code, message, data } = error;
  const secrets = member.credential ? [member.credential.token, member.credential.header[1]] : [];
  return {
    code: typeof code === 'number' && Number.isInteger(code) ? code : -32603,
    message: scrubSecrets(typeof message === 'string' ? message : 'upstream error', secrets, false),
    ...(data === undefined ? {} : { data: JSON.parse(scrubSecrets(JSON.stringify(data), secrets, false)) as unknown }),
  };
}

/**
 * The upstream registry: the configured upstreams by name and by gateway path, whose credential a
 * person's request carries, and the gateway's own MCP client for them. What other folders import
 * of src/upstreams/ is exported here.
 */
export {
  type CallResult,
  callUpstream,
  endSession,
  type JsonRpcRequest,
  linkFor,
  listUpstream,
  PROTOCOL_VERSION,
  probeUpstream,
  sendRequest,
  type TokenCheck,
  type UpstreamLink,
} from './client';
export {
  authHeaderFor,
  type CredentialKind,
  takesOwnTokens,
  type UpstreamCredential,
  upstreamAuthHeader,
  upstreamCredential,
  upstreamTokenFor,
} from './credentials';
export { type ForwardOptions, forwardToUpstream, type UpstreamResult } from './fetch';
export { PROTECTED_RESOURCE_ROOT, upstreamNamed, upstreamNameFor } from './paths';

/**
 * The upstream registry: the configured upstreams by name and by gateway path, whose credential a
 * person's request carries, and the gateway's own MCP client for them. What other folders import
 * of src/upstreams/ is exported here.
 */
export {
  type CallResult,
  type Conversation,
  callUpstream,
  endSession,
  gatewayId,
  type JsonRpcRequest,
  type ListResult,
  linkFor,
  listUpstream,
  listUpstreamWithHint,
  openConversation,
  sendRequest,
  type UpstreamLink,
  watchUpstream,
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
export { CLIENT_INFO, GATEWAY_VERSION, isModernRevision, LEGACY_PROTOCOL_VERSION, MODERN_PROTOCOL_VERSION } from './revision';
export { probeUpstream, type TokenCheck } from './token-check';

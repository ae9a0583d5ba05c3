/**
 * Server-sent events, parsed once however many rewrites a stream needs (issue #17):
 * `rewriteJsonRpcEvents` reads a stream event by event (JSON-RPC messages, and a legacy stream's
 * `endpoint` events in the same pass); `rewriteEndpointEvents` is for a stream whose only rewrite is
 * the endpoint: a byte scanner, then a native pipe once the stream is known not to be a legacy one.
 */
export { type EventRewriteOptions, rewriteJsonRpcEvents, sseEvent } from './events';
export { rewriteEndpointEvents } from './pipe';
export type { EndpointRewrite } from './scanner';

/**
 * The HTTP+SSE transport (MCP 2024-11-05) through the gateway: the `endpoint` events found on the
 * GET stream (src/lib/sse/) are announced sealed, back to the gateway (endpoint-seal.ts).
 */
export { gatewayEndpointFor, upstreamUrlForSignedEndpoint } from './endpoint-seal';

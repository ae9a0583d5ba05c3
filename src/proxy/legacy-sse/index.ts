/**
 * The HTTP+SSE transport (MCP 2024-11-05) through the gateway: `endpoint` events found on the GET
 * stream (scanner.ts, pipe.ts) and announced sealed, back to the gateway (endpoint-seal.ts).
 */
export { gatewayEndpointFor, upstreamUrlForSignedEndpoint } from './endpoint-seal';
export { rewriteEndpointEvents } from './pipe';

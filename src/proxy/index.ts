/**
 * The MCP proxy: one authenticated request through its steps to the upstream and back. What other
 * folders, tests and the bench import of src/proxy/ is exported here.
 */
export { proxyMcpRequest } from './handler';
export { clientResponseHeaders, upstreamRequestHeaders, withCors } from './headers';
export { jsonRpcErrorResponse, ProxyError, type ProxyErrorKind } from './jsonrpc-error';
export { logProxyRequest } from './log';
export { readRequestBody } from './message';
export { scrubSecrets } from './scrub';
export { bindSessionId, forwardSessionId } from './session-binding';

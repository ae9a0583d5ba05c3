/**
 * Small shared helpers, below every other folder. What other folders, tests and the bench import of
 * src/lib/ is exported here, on purpose; the files behind it may move.
 */
export { base64url, fromBase64url } from './base64url';
export { hostCookie, readCookie } from './cookies';
export { isRawJsonNumber, parseExactJson, type RawJsonNumber } from './exact-json';
export { html, htmlPage, type SafeHtml } from './html';
export { idKey } from './jsonrpc-id';
export { hmacKey, sha256, sign, verify } from './keys';
export { isCrossSitePost } from './origin';
export { openSealed, sealText } from './seal';
export { type EndpointRewrite, type EventRewriteOptions, rewriteEndpointEvents, rewriteJsonRpcEvents, sseEvent } from './sse';

/**
 * Who may call which tool, and how often: pure functions over JSON-RPC messages, and the rate
 * limiter's Durable Object. What other folders and tests import of src/policy/ is exported here.
 */
export { forgetTools, knownReadOnly, rememberTools } from './annotations';
export { contentRequestOf, filterContentResult } from './content-rules';
export { RateLimiter, type RateLimitVerdict, takeRequests } from './rate-limiter';
export { callsNeedingAnnotations, type ListMatch, planToolRequest, rewriteListAnswers, type ToolRefusal } from './tool-messages';
export { isObject, isToolAvailable, isToolNameAllowed } from './tool-rules';

export { helpersFor } from './helpers';
export { gatewayFor } from './origins';
export { grantOfToken, TOKEN_CACHE_MAX_ENTRIES, TOKEN_CACHE_TTL_MS, TokenCache, type TokenCacheOptions } from './token-cache';
export { handleAuthorizationServerRequest } from './token-request';

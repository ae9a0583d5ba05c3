/**
 * People's own upstream tokens: sealed at rest (crypto.ts) and stored in KV with an isolate cache
 * (store.ts). What other folders, tests and the bench import of src/vault/ is exported here; the
 * seal's two functions are exported for the known-answer tests.
 */
export { openToken, sealToken } from './crypto';
export { TokenVault } from './store';

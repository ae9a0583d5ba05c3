/**
 * The token page a person pastes their own upstream token into, and the checks a pasted token goes
 * through before it is stored. What other folders import of src/own-token/ is exported here.
 */
export { renderTokenPage } from './page';
export { vetPastedToken } from './vet';

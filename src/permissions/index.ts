export { isAdmin, isAllowedEmail, mayUseGateway, type Person, refusalFor, refusalForAny } from './allowlists';
export { type GrantLimits, grantTerms, nowInSeconds, stampSignIn } from './grant-age';
export { GRANTED_SCOPES } from './scopes';
export { toolRulesFor } from './tool-rules';

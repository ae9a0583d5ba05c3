export { type AccessLoginData, CALLBACK_PATH } from './access-url';
export { type GroupsClaim, groupsFromClaims, MAX_GROUPS } from './groups';
export { redirectToAccess } from './redirect';
export { type GrantProps, identityOf, type Revalidation, revalidateWithAccess } from './revalidate';
export { beginLogin, type FinishedLogin, finishLogin, type LoginData, type LoginPurpose, type LoginStore, type LoginTie, type OwnTokenTurn } from './state';
export { type AccessSignIn, verifyAccessLogin, verifyAccessSignIn } from './verify';

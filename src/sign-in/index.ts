export { type AccessLoginData, CALLBACK_PATH } from './access-url';
export { redirectToAccess } from './redirect';
export { beginLogin, type FinishedLogin, finishLogin, type LoginData, type LoginPurpose, type LoginStore, type LoginTie } from './state';
export { verifyAccessLogin } from './verify';

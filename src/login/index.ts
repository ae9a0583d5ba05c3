export { finishMcpLogin } from './callback';
export { handleAuthorize } from './consent';
export { handleTokenStep, TOKEN_STEP_PATH } from './own-token-step';

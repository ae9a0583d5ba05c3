export { PageError, type PageErrorKind, type PageErrorOptions, renderInternalError, renderPageError, type StartAgain } from './errors';
export { landingPage } from './landing';
export { misconfiguredPage, useHttpsPage } from './status';

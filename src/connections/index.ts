export { handleAudit } from './audit-handler';
export { AUDIT_PATH } from './audit-page';
export { handleConnections } from './handler';
export { CONNECTIONS_PATH, finishConnectionsLogin } from './session';

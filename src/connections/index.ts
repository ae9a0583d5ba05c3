export { handleAudit } from './audit-handler';
export { handleConnections } from './handler';
export { AUDIT_PATH, CONNECTIONS_PATH, finishConnectionsLogin } from './session';

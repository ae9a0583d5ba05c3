export { handleConnections } from './handler';
export { CONNECTIONS_PATH, finishConnectionsLogin } from './session';

export type { AuditEvent, AuditEventName, McpRequestFields } from './events';
export { emit } from './sink';

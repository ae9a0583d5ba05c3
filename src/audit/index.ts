export type { AuditEvent, AuditEventName, McpRequestFields } from './events';
export type { AuditCursor, AuditFilters, AuditOutcome, AuditPage, HourCount, PageOptions, StoredEvent } from './query';
export { AUDIT_OUTCOMES, countsPerHour, recentEventsFor, searchEvents, streamEvents } from './query';
export { emit } from './sink';

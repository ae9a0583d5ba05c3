export type { AuditEvent, AuditEventName, McpRequestFields, TrailOnlyFields } from './events';
export type { AuditCursor, AuditFilters, AuditOutcome, AuditPage, HourCount, PageOptions, StoredEvent } from './query';
export { AUDIT_OUTCOMES, countsPerHour, recentEventsFor, searchEvents, streamEvents } from './query';
export type { PruneOptions, PruneResult } from './retention';
export { pruneTrail, pruneTrailAtCron } from './retention';
export type { AuditState } from './schema';
export { AUDIT_SCHEMA_VERSION, auditDatabase, auditState } from './schema';
export { emit } from './sink';
export { discardQueuedTrail, flushTrail } from './store';

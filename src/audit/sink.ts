/**
 * The one sink every event goes through: one JSON line on the console (`npx wrangler tail`), at
 * the level its kind has, and, for the kinds a person or admin reads later, a row queued for the
 * audit trail (src/audit/store.ts), written after the response.
 */
import type { AuditEvent, AuditEventName } from './events';
import { queueForTrail } from './store';

type Level = 'log' | 'warn' | 'error';

const LEVELS: Record<AuditEventName, Level> = {
  mcp_proxy: 'log',
  mcp_proxy_endpoint_refused: 'warn',
  rate_limiter_unavailable: 'warn',
  aggregate_upstream_left_out: 'warn',
  sign_in: 'log',
  consent_approved: 'log',
  consent_denied: 'log',
  own_token_saved: 'log',
  own_token_replaced: 'log',
  own_token_deleted: 'log',
  app_disconnected: 'log',
  page_error: 'warn',
  internal_error: 'error',
  oauth_error: 'warn',
  misconfigured: 'error',
  audit_write_failed: 'warn',
  audit_pruned: 'log',
  audit_prune_failed: 'warn',
  audit_read_failed: 'warn',
  purge: 'log',
};

/**
 * Prints one event now, as one JSON line, fields in the order the event was built with, and queues
 * its trail row. `trailOnly` (tool arguments, the app's own name) goes to the row and is dropped
 * from the line: copied out without it, so the printed text never holds it however it is spelled.
 */
export function emit(event: AuditEvent): void {
  console[LEVELS[event.event]](JSON.stringify(printed(event)));
  queueForTrail(event);
}

function printed(event: AuditEvent): AuditEvent {
  if (!('trailOnly' in event)) return event;
  const { trailOnly: _stored, ...line } = event;
  return line;
}

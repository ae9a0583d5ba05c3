/**
 * The one sink every event goes through: one JSON line on the console (`npx wrangler tail`), at
 * the level its kind has. An audit-trail store is added here, and nowhere else.
 */
import type { AuditEvent, AuditEventName } from './events';

type Level = 'log' | 'warn' | 'error';

const LEVELS: Record<AuditEventName, Level> = {
  mcp_proxy: 'log',
  mcp_proxy_endpoint_refused: 'warn',
  rate_limiter_unavailable: 'warn',
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
  purge: 'log',
};

/** Prints one event now, as one JSON line, fields in the order the event was built with. */
export function emit(event: AuditEvent): void {
  console[LEVELS[event.event]](JSON.stringify(event));
}

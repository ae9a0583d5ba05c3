import { auditDatabase, emit, flushTrail, pruneTrail } from './audit';
import { ConfigError, configFor, DEFAULT_AUDIT_MAX_ROWS, DEFAULT_AUDIT_RETENTION_DAYS } from './config';
import { purgeExpiredData } from './purge';
import { routeRequest } from './routes';

export default {
  /**
   * Every request goes through the route table (src/routes.ts) with this environment's
   * configuration; the audit trail's rows are written after the response (src/audit/store.ts).
   */
  async fetch(request, env, ctx): Promise<Response> {
    try {
      return await routeRequest(request, env, ctx, configFor(env));
    } finally {
      ctx.waitUntil(flushTrail(auditDatabase(env)));
    }
  },

  /** The cron trigger (wrangler.jsonc): sweeps expired and orphaned grants and tokens from KV, and prunes the audit trail. */
  async scheduled(_controller, env, _ctx): Promise<void> {
    const db = auditDatabase(env);
    if (db) {
      const config = configFor(env);
      const limits = config instanceof ConfigError ? { retentionDays: DEFAULT_AUDIT_RETENTION_DAYS, maxRows: DEFAULT_AUDIT_MAX_ROWS } : config.audit;
      try {
        emit({ event: 'audit_pruned', ...(await pruneTrail(db, limits)) });
      } catch (error) {
        // A missing schema, or D1 down: the KV sweep still runs.
        emit({ event: 'audit_prune_failed', error: error instanceof Error ? error.message.slice(0, 300) : 'unknown error' });
      }
    }
    await purgeExpiredData(env);
  },
} satisfies ExportedHandler<Env>;

// A Durable Object class must be exported by the Worker's main module: the one exception to
// "index.ts exports only the Worker".
export { RateLimiter } from './policy';

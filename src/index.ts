import { auditDatabase, flushTrail, pruneTrailAtCron } from './audit';
import { configFor } from './config';
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
    await pruneTrailAtCron(env);
    await purgeExpiredData(env);
  },
} satisfies ExportedHandler<Env>;

// A Durable Object class must be exported by the Worker's main module: the one exception to
// "index.ts exports only the Worker".
export { AggregateSessions } from './aggregate';
export { RateLimiter } from './policy';

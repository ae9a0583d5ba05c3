/**
 * Keeps the audit trail bounded, from the hourly cron: rows older than AUDIT_RETENTION_DAYS go,
 * then, whatever their age, the oldest beyond AUDIT_MAX_ROWS (the size guard: a burst of traffic
 * never fills the database). Deletes run in chunks so no statement runs long; what a run leaves
 * the next one takes. The row count is read from the ids (AUTOINCREMENT, only the oldest are ever
 * deleted), one index lookup rather than a COUNT over a million rows every hour.
 */

const CHUNK = 10_000;
const CHUNKS_PER_RUN = 20;
const DAY_MS = 86_400_000;

export interface PruneOptions {
  retentionDays: number;
  maxRows: number;
  now?: number;
}

export interface PruneResult {
  expired: number;
  overLimit: number;
}

/** Deletes expired rows, then the oldest beyond the row limit. */
export async function pruneTrail(db: D1Database, options: PruneOptions): Promise<PruneResult> {
  const cutoff = (options.now ?? Date.now()) - options.retentionDays * DAY_MS;
  const expired = await deleteInChunks(
    db.prepare(`DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE time < ? ORDER BY time LIMIT ${CHUNK})`).bind(cutoff),
  );
  const newest = await db.prepare('SELECT MAX(id) AS id FROM audit_events').first<{ id: number | null }>();
  let overLimit = 0;
  if (newest?.id != null) {
    const keepFrom = newest.id - options.maxRows + 1;
    overLimit = await deleteInChunks(
      db.prepare(`DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE id < ? ORDER BY id LIMIT ${CHUNK})`).bind(keepFrom),
    );
  }
  return { expired, overLimit };
}

async function deleteInChunks(statement: D1PreparedStatement): Promise<number> {
  let total = 0;
  for (let chunk = 0; chunk < CHUNKS_PER_RUN; chunk++) {
    const result = await statement.run();
    const changes = result.meta.changes ?? 0;
    total += changes;
    if (changes < CHUNK) break;
  }
  return total;
}

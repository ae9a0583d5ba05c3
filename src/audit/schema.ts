/**
 * Whether the audit database is there and as new as the code: migrations/ ends with the row
 * `audit_schema.version`, which must be AUDIT_SCHEMA_VERSION (raise both together).
 */

/** The version the newest file in migrations/ writes. */
export const AUDIT_SCHEMA_VERSION = 1;

/** off: no AUDIT_DB binding; missing: no tables (migrations never applied); behind: an older version; on: ready. */
export type AuditState = 'on' | 'off' | 'missing' | 'behind';

/** Reads the schema version; never throws (a database that cannot answer is reported missing). */
export async function auditState(db: D1Database | undefined): Promise<AuditState> {
  if (!db) return 'off';
  try {
    const row = await db.prepare('SELECT MAX(version) AS version FROM audit_schema').first<{ version: number | null }>();
    const version = row?.version ?? 0;
    return version >= AUDIT_SCHEMA_VERSION ? 'on' : 'behind';
  } catch {
    return 'missing';
  }
}

/** The AUDIT_DB binding, when the deployment has one (it is optional: wrangler.jsonc). */
export function auditDatabase(env: object): D1Database | undefined {
  const db = (env as { AUDIT_DB?: unknown }).AUDIT_DB;
  return db && typeof db === 'object' ? (db as D1Database) : undefined;
}

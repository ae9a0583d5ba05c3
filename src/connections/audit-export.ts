/**
 * The export of /connections/audit: the filtered events as CSV or JSON Lines, streamed a chunk of
 * the keyset query at a time, so a million rows never sit in memory at once.
 */
import type { StoredEvent } from '../audit';

export type ExportFormat = 'csv' | 'jsonl';

/** The exported columns, in order: everything stored (arguments only where an upstream opted in). */
export const EXPORT_COLUMNS = [
  'id',
  'time',
  'kind',
  'email',
  'actor',
  'groups',
  'clientId',
  'clientName',
  'upstream',
  'rpcMethod',
  'tool',
  'outcome',
  'status',
  'upstreamStatus',
  'durationMs',
  'arguments',
] as const satisfies readonly (keyof StoredEvent)[];

const ROWS_PER_CHUNK = 200;

/** A streamed download of every event the iterator yields. */
export function exportResponse(format: ExportFormat, events: AsyncIterator<StoredEvent>): Response {
  const encoder = new TextEncoder();
  let header = format === 'csv' ? `${EXPORT_COLUMNS.join(',')}\r\n` : '';
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let text = header;
      header = '';
      for (let i = 0; i < ROWS_PER_CHUNK; i++) {
        const next = await events.next();
        if (next.done) {
          if (text) controller.enqueue(encoder.encode(text));
          controller.close();
          return;
        }
        text += format === 'csv' ? csvLine(next.value) : `${JSON.stringify(exported(next.value))}\n`;
      }
      controller.enqueue(encoder.encode(text));
    },
    async cancel() {
      await events.return?.();
    },
  });
  const stamp = new Date().toISOString().slice(0, 19).replace(/[-:]/g, '');
  return new Response(body, {
    headers: {
      'Content-Type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/jsonl; charset=utf-8',
      'Content-Disposition': `attachment; filename="audit-${stamp}.${format}"`,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    },
  });
}

/** The event with its time as ISO 8601 too, which a reader of the export wants. */
function exported(event: StoredEvent): Record<string, unknown> {
  return Object.fromEntries(EXPORT_COLUMNS.map((column) => [column, column === 'time' ? new Date(event.time).toISOString() : event[column]]));
}

function csvLine(event: StoredEvent): string {
  const row = exported(event);
  return `${EXPORT_COLUMNS.map((column) => csvCell(row[column])).join(',')}\r\n`;
}

/**
 * One CSV cell (RFC 4180 quoting). A text cell a spreadsheet would run as a formula (`=`, `+`,
 * `-`, `@`, or a tab or carriage return before one) gets a leading `'`, as OWASP advises.
 */
export function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'number') return String(value);
  let text = typeof value === 'string' ? value : JSON.stringify(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * Reads a response body to its end as text, chunk by chunk as it arrives.
 *
 * `closedBy` is the signal the client passed to fetch. When the client aborts it (an explicit
 * close), reading goes on through whatever had already arrived, then stops and resolves 'closed':
 * a clone's branch would otherwise keep the connection open, and read what the client never got.
 * A body read to its end resolves 'ended'. Any other read error (a cut connection, a malformed
 * stream) rejects, so a check built on what was read never passes on a stream it could not read.
 */
export async function readAll(response: Response, onText: (text: string) => void, closedBy?: AbortSignal | null): Promise<'ended' | 'closed'> {
  const reader = response.body?.getReader();
  if (!reader) return 'ended';
  // A macrotask later: chunks already queued are read first, in microtasks, then the read stops.
  const stop = () => setTimeout(() => void reader.cancel().catch(() => {}), 0);
  if (closedBy?.aborted) stop();
  else closedBy?.addEventListener('abort', stop, { once: true });
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        onText(decoder.decode());
        return closedBy?.aborted ? 'closed' : 'ended';
      }
      onText(decoder.decode(value, { stream: true }));
    }
  } catch (error) {
    if (closedBy?.aborted) return 'closed';
    throw new Error(`reading ${response.status} ${response.url} failed`, { cause: error });
  } finally {
    closedBy?.removeEventListener('abort', stop);
  }
}

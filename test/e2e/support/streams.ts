/**
 * Reads a response body to its end as text, chunk by chunk as it arrives. A cut stream just ends;
 * `signal` cancels the read (a clone's open branch otherwise keeps the connection alive).
 */
export async function readAll(response: Response, onText: (text: string) => void, signal?: AbortSignal): Promise<void> {
  const reader = response.body?.getReader();
  if (!reader) return;
  signal?.addEventListener('abort', () => void reader.cancel().catch(() => {}), { once: true });
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      onText(decoder.decode(value, { stream: true }));
    }
  } catch {
    // The client closed the stream.
  }
}

/**
 * The one upstream fetch, for the proxy's pass-through and for every request the gateway sends
 * itself (src/upstreams/client.ts): streamed both ways, bounded in time until the response headers
 * arrive, cancelled when the client goes away, and never following a redirect with the credential.
 */

export type UpstreamResult =
  | { outcome: 'response'; response: Response }
  /** `cause`: the fetch's error, for the doctor's own report; never passed on to a client or logged. */
  | { outcome: 'timeout' | 'unreachable' | 'client_closed'; cause?: unknown };

export interface ForwardOptions {
  method: string;
  headers: Headers;
  body: ReadableStream<Uint8Array> | ArrayBuffer | string | null;
  /** The client's request signal: aborting it cancels the upstream request and its body. */
  signal?: AbortSignal;
  /** How long to wait for the upstream's response headers; a stream may then stay open for ever. */
  timeoutMs: number;
}

export async function forwardToUpstream(target: URL, options: ForwardOptions): Promise<UpstreamResult> {
  const signal = options.signal ?? new AbortController().signal;
  if (signal.aborted) return { outcome: 'client_closed' };

  // One controller for both reasons to stop: the header timeout, and the client going away (which
  // must also cancel a body that is still streaming, so the listener stays after the headers).
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs);
  const onClientAbort = () => controller.abort(signal.reason);
  signal.addEventListener('abort', onClientAbort, { once: true });

  try {
    const response = await fetch(target, {
      method: options.method,
      headers: options.headers,
      body: options.body,
      // A redirect is answered by the handler: following it would send the credential to wherever
      // the upstream points.
      redirect: 'manual',
      signal: controller.signal,
    });
    return { outcome: 'response', response };
  } catch (cause) {
    // The error's text can name the upstream host; it is never passed on, and the log gets only the outcome.
    signal.removeEventListener('abort', onClientAbort);
    if (signal.aborted) return { outcome: 'client_closed', cause };
    return { outcome: timedOut ? 'timeout' : 'unreachable', cause };
  } finally {
    clearTimeout(timer);
  }
}
